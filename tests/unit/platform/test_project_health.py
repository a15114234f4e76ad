"""A project's health from the health monitor's state file: its own checks only, unknown without a record."""

from __future__ import annotations

from nextmavens.monitor.projecthealth import STALE_AFTER_S, project_health

CHECKED_AT = 1_780_000_000.0
RECORDED = {
    "container:nm-shop-rest-1": {"ok": True, "detail": "running (healthy)", "restarts": 0},
    "container:nm-shop-auth-1": {"ok": True, "detail": "running", "restarts": 2},
    "container:nm-shop-x-rest-1": {"ok": False, "detail": "exited"},  # project shop-x, not shop
    "container:nextmavens-kong": {"ok": False, "detail": "exited"},  # a shared service
    "probe:project:shop": {"ok": True, "detail": "HTTP 401"},
    "probe:platform": {"ok": False, "detail": "HTTP 502"},
    "backup:acme/shop": {"ok": True, "detail": "last good 3 h ago"},
    "backup:globex/shop": {"ok": False, "detail": "never backed up"},  # another org's project of that ref
    "superuser:eve": {"ok": False, "detail": "eve is a superuser the platform does not manage"},
}


def health(recorded: dict[str, object], now: float = CHECKED_AT + 60) -> dict[str, object]:
    return project_health({"health": recorded, "checked_at": CHECKED_AT}, "acme", "shop", now)


def test_no_record_is_unknown() -> None:
    unknown = {"state": "unknown", "checked_at": None, "stale": False, "checks": []}
    assert project_health({}, "acme", "shop", CHECKED_AT) == unknown
    assert project_health({"health": "torn", "checked_at": CHECKED_AT}, "acme", "shop", CHECKED_AT) == unknown
    assert project_health({"health": {}}, "acme", "shop", CHECKED_AT) == unknown


def test_only_the_projects_own_checks_count() -> None:
    shown = health(RECORDED)
    assert shown["state"] == "ok" and shown["stale"] is False
    assert shown["checked_at"] == "2026-05-28T20:26:40+00:00"
    assert shown["checks"] == [
        {"name": "backup:acme/shop", "ok": True, "detail": "last good 3 h ago"},
        {"name": "container:nm-shop-auth-1", "ok": True, "detail": "running"},
        {"name": "container:nm-shop-rest-1", "ok": True, "detail": "running (healthy)"},
        {"name": "probe:project:shop", "ok": True, "detail": "HTTP 401"},
    ]


def test_one_failing_check_makes_it_failing() -> None:
    shown = health({**RECORDED, "probe:project:shop": {"ok": False, "detail": "HTTP 502"}})
    assert shown["state"] == "failing"
    assert {"name": "probe:project:shop", "ok": False, "detail": "HTTP 502"} in shown["checks"]  # type: ignore[operator]


def test_a_record_without_the_project_is_unknown_and_an_old_one_stale() -> None:
    others = {k: v for k, v in RECORDED.items() if "shop" not in k or "shop-x" in k or "globex" in k}
    assert health(others)["state"] == "unknown" and health(others)["checked_at"] is not None
    assert health(RECORDED, now=CHECKED_AT + STALE_AFTER_S + 1)["stale"] is True
    assert health({"probe:project:shop": {"ok": "yes", "detail": "HTTP 200"}})["state"] == "failing"  # not True
