"""One project's health as the health monitor last recorded it (its state file). Pure.

The monitor records checks by key (see `health.snapshot` and `monitor health`): the project's containers
(`container:nm-<ref>-<service>-<n>`), its API probe (`probe:project:<ref>`) and its backup freshness
(`backup:<org>/<ref>`). Only those keys are picked, each as name, ok and the monitor's short detail (a
container state, an HTTP status or a connection error, a backup's age): no check holds a secret.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from nextmavens.naming import compose_project_name

# The health timer runs every 5 minutes: a record older than three runs says the monitor stopped.
STALE_AFTER_S = 15 * 60


def project_checks(recorded: dict[str, Any], org: str, ref: str) -> list[dict[str, Any]]:
    """The project's checks in a recorded health state, sorted by name."""
    container = re.compile(rf"container:{re.escape(compose_project_name(ref))}-[a-z0-9]+-[0-9]+")
    wanted = {f"probe:project:{ref}", f"backup:{org}/{ref}"}
    found = []
    for name, check in sorted(recorded.items()):
        if not isinstance(check, dict) or not (name in wanted or container.fullmatch(name)):
            continue
        found.append({"name": name, "ok": check.get("ok") is True, "detail": str(check.get("detail", ""))[:200]})
    return found


def project_health(state: dict[str, Any], org: str, ref: str, now: float) -> dict[str, Any]:
    """{"state": "ok" | "failing" | "unknown", "checked_at", "stale", "checks"} from the monitor's state file
    (`{"health": {...}, "checked_at": <unix time>}`; {} when the monitor never ran). "unknown": no record of
    this project, e.g. the monitor never ran or does not watch it yet."""
    recorded = state.get("health")
    checked_at = state.get("checked_at")
    if not isinstance(recorded, dict) or not isinstance(checked_at, int | float):
        return {"state": "unknown", "checked_at": None, "stale": False, "checks": []}
    checks = project_checks(recorded, org, ref)
    verdict = "unknown" if not checks else "ok" if all(c["ok"] for c in checks) else "failing"
    return {
        "state": verdict,
        "checked_at": datetime.fromtimestamp(checked_at, UTC).isoformat(),
        "stale": now - checked_at > STALE_AFTER_S,
        "checks": checks,
    }
