"""Stuck WhatsApp instances: state history in, checks out (nextmavens.monitor.whatsappstates), and the health
monitor's change-only alerts they ride: one alert when an instance gets stuck, one when it recovers."""

from __future__ import annotations

import pytest

from nextmavens.monitor.health import changes
from nextmavens.monitor.whatsappstates import observed_states, stuck_checks, stuck_limit_s, track

LIMIT = 600.0


def run(history: dict, observed: dict[str, str], now: float) -> tuple[dict, dict]:
    tracked = track(history, observed, now)
    return tracked, stuck_checks(tracked, now, LIMIT)


def test_a_state_keeps_its_first_sighting_and_a_new_state_starts_over() -> None:
    history, _ = run({}, {"shop--orders": "connecting"}, 1000)
    history, _ = run(history, {"shop--orders": "connecting"}, 1300)
    assert history == {"shop--orders": {"state": "connecting", "since": 1000}}
    history, _ = run(history, {"shop--orders": "close"}, 1400)
    assert history == {"shop--orders": {"state": "close", "since": 1400}}
    assert run(history, {}, 1500)[0] == {}  # an instance Evolution no longer lists is forgotten


@pytest.mark.parametrize("state", ["connecting", "close"])
def test_stuck_only_at_the_limit(state: str) -> None:
    history, checks = run({}, {"a": state}, 0)
    assert checks == {"whatsapp:a": {"ok": True, "detail": f"{state} for 0 min"}}
    _, checks = run(history, {"a": state}, LIMIT - 1)
    assert checks["whatsapp:a"]["ok"] is True
    _, checks = run(history, {"a": state}, LIMIT)
    assert checks == {"whatsapp:a": {"ok": False, "detail": f"{state} for 10 min"}}


def test_open_is_never_stuck_however_long() -> None:
    history, _ = run({}, {"a": "open"}, 0)
    assert run(history, {"a": "open"}, 10 * LIMIT)[1] == {"whatsapp:a": {"ok": True, "detail": "open"}}


def test_flapping_between_connecting_and_close_restarts_the_clock() -> None:
    history, _ = run({}, {"a": "connecting"}, 0)
    history, checks = run(history, {"a": "close"}, LIMIT - 10)
    assert checks["whatsapp:a"]["ok"] is True


def test_alerts_once_when_stuck_and_once_when_recovered() -> None:
    history, first = run({}, {"a": "connecting", "b": "open"}, 0)
    history, stuck = run(history, {"a": "connecting", "b": "open"}, LIMIT + 60)
    history, still = run(history, {"a": "connecting", "b": "open"}, LIMIT + 360)
    history, back = run(history, {"a": "open", "b": "open"}, LIMIT + 660)
    assert changes(first, stuck) == ["whatsapp:a is DOWN: connecting for 11 min (was connecting for 0 min)"]
    assert changes(stuck, still) == []  # still stuck: no second alert
    assert changes(still, back) == ["whatsapp:a recovered: open"]
    # a stuck instance that is deleted recovers too, rather than failing silently forever
    assert changes(still, {"whatsapp:b": still["whatsapp:b"]}) == [
        "whatsapp:a recovered: the instance is gone from Evolution"
    ]


def test_the_limit_setting() -> None:
    assert stuck_limit_s({}) == 600
    assert stuck_limit_s({"NEXTMAVENS_WHATSAPP_STUCK_MINUTES": "2.5"}) == 150
    for bad in ("0", "-3", "ten"):
        with pytest.raises(ValueError, match=f"NEXTMAVENS_WHATSAPP_STUCK_MINUTES='{bad}'"):
            stuck_limit_s({"NEXTMAVENS_WHATSAPP_STUCK_MINUTES": bad})


def test_states_from_fetch_instances_rows() -> None:
    rows = [{"name": "shop--orders", "connectionStatus": "open", "token": "t"}, {"name": "x"}, {"id": "no-name"}]
    assert observed_states(rows) == {"shop--orders": "open", "x": "unknown"}
