"""Which targets the hourly backup timer runs, per manifest schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nextmavens.backup.pipeline import Target
from nextmavens.backup.targets import due

NOW = datetime(2026, 11, 26, 3, 5, tzinfo=UTC)  # 03:05, the backup hour is 3


def test_never_backed_up_is_due() -> None:
    assert due(Target("a/b", "b", "weekly"), None, NOW, 3)


def test_hourly() -> None:
    target = Target("a/b", "b", "hourly")
    assert not due(target, NOW - timedelta(minutes=30), NOW, 3)
    assert due(target, NOW - timedelta(minutes=55), NOW, 3)


def test_daily_runs_at_the_set_hour_and_catches_up_when_overdue() -> None:
    target = Target("a/b", "b", "daily")
    assert due(target, NOW - timedelta(hours=24), NOW, 3)
    assert not due(target, NOW - timedelta(hours=24), NOW, 4)  # not the hour, not overdue
    assert not due(target, NOW - timedelta(hours=1), NOW, 3)  # already done tonight
    assert due(target, NOW - timedelta(hours=26), NOW, 9)  # a missed night: at once


def test_weekly() -> None:
    target = Target("a/b", "b", "weekly")
    assert not due(target, NOW - timedelta(days=3), NOW, 3)
    assert due(target, NOW - timedelta(days=7), NOW, 3)
    assert due(target, NOW - timedelta(days=8), NOW, 11)
