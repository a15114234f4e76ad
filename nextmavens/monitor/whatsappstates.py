"""When a WhatsApp instance has been `connecting` or `close` for too long. Pure: state history in, checks out.

The health monitor asks Evolution for every instance's state each run and keeps, per instance, the state it last
saw and since when (`track`). An instance that stays in a stuck state for the limit or longer becomes a failing
check (`stuck_checks`), which rides the monitor's change-only alerts: one alert when it gets stuck, one when it
recovers. The limit is NEXTMAVENS_WHATSAPP_STUCK_MINUTES (default 10): pairing takes a few minutes, and a
session WhatsApp dropped is back within seconds when it reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STUCK_STATES = ("connecting", "close")
DEFAULT_STUCK_MINUTES = 10
STUCK_MINUTES_ENV = "NEXTMAVENS_WHATSAPP_STUCK_MINUTES"
CHECK_PREFIX = "whatsapp:"


def stuck_limit_s(env: Mapping[str, str]) -> float:
    """The limit in seconds from the environment; ValueError naming the variable when it is not a positive number."""
    raw = env.get(STUCK_MINUTES_ENV, "").strip()
    if not raw:
        return DEFAULT_STUCK_MINUTES * 60.0
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0.0
    if not minutes > 0:
        raise ValueError(f"{STUCK_MINUTES_ENV}={raw!r}: expected a number of minutes above 0")
    return minutes * 60.0


def track(history: Mapping[str, Any], observed: Mapping[str, str], now: float) -> dict[str, dict[str, Any]]:
    """Each observed instance's state and since when it holds it; instances no longer observed are dropped."""
    tracked: dict[str, dict[str, Any]] = {}
    for name, state in sorted(observed.items()):
        before = history.get(name)
        same = isinstance(before, Mapping) and before.get("state") == state
        since = before.get("since") if same and isinstance(before, Mapping) else None
        tracked[name] = {"state": state, "since": since if isinstance(since, int | float) else now}
    return tracked


def stuck_checks(history: Mapping[str, Mapping[str, Any]], now: float, limit_s: float) -> dict[str, dict[str, Any]]:
    """{"whatsapp:<evolution name>": {"ok", "detail"}}: failing once the instance has been stuck for `limit_s`."""
    checks = {}
    for name, seen in sorted(history.items()):
        state, held = str(seen["state"]), max(0.0, now - float(seen["since"]))
        stuck = state in STUCK_STATES and held >= limit_s
        detail = f"{state} for {int(held // 60)} min" if state in STUCK_STATES else state
        checks[CHECK_PREFIX + name] = {"ok": not stuck, "detail": detail}
    return checks


def observed_states(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Instance name -> state from fetchInstances rows (`name`, `connectionStatus`)."""
    return {str(r["name"]): str(r.get("connectionStatus") or "unknown") for r in rows if r.get("name")}
