"""The tiers' arithmetic: what is due, what may be pruned, which tier serves a span."""

from __future__ import annotations

import pytest

from nextmavens.metrictiers import (
    DAY,
    FIVE,
    HOUR,
    HOURLY,
    MINUTE,
    RAW,
    Read,
    expand_rows,
    parse_since,
    prune_before,
    read_plan,
    resample,
    rollup_window,
    slot_aggregate,
)

NOW = 1_790_000_000 - 1_790_000_000 % DAY + 5 * HOUR + 7 * MINUTE + 13


def test_rollup_windows_cover_whole_periods_only() -> None:
    assert rollup_window(FIVE, None, NOW, None) is None
    assert rollup_window(FIVE, None, NOW, NOW - 2 * HOUR) == (NOW - NOW % HOUR - 2 * HOUR, NOW - NOW % HOUR)
    hour = NOW - NOW % HOUR
    assert rollup_window(FIVE, hour, NOW, 0) is None  # the current hour is not over
    # the hourly tier goes no further than the 5-minute tier is complete
    midnight = NOW - NOW % DAY
    window = rollup_window(HOURLY, midnight - DAY, NOW + DAY, 0, source_done=midnight + HOUR)
    assert window == (midnight - DAY, midnight)


def test_pruning_waits_for_the_coarser_tier() -> None:
    assert prune_before(RAW, NOW, None) == 0  # nothing rolled up: nothing pruned
    assert prune_before(RAW, NOW, NOW - 72 * HOUR) == NOW - 72 * HOUR  # behind: keep what is not rolled up
    assert prune_before(RAW, NOW, NOW) == NOW - NOW % MINUTE - 48 * HOUR
    assert prune_before(FIVE, NOW, NOW) == (NOW - 30 * DAY) - (NOW - 30 * DAY) % HOUR
    assert prune_before(HOURLY, NOW, None) == (NOW - 366 * DAY) - (NOW - 366 * DAY) % DAY


def test_read_plan_per_span() -> None:
    hour = NOW - NOW % HOUR
    midnight = NOW - NOW % DAY
    assert read_plan(NOW - 24 * HOUR, NOW, {"5m": hour, "1h": midnight}) == [Read(RAW, NOW - 24 * HOUR, NOW + 1)]
    assert read_plan(NOW - 7 * DAY, NOW, {"5m": hour, "1h": midnight}) == [
        Read(FIVE, NOW - 7 * DAY, hour),
        Read(RAW, hour, NOW + 1),
    ]
    assert read_plan(NOW - 90 * DAY, NOW, {"5m": hour, "1h": midnight}) == [
        Read(HOURLY, NOW - 90 * DAY, midnight),
        Read(FIVE, midnight, hour),
        Read(RAW, hour, NOW + 1),
    ]
    # never rolled up: raw serves all it has
    assert read_plan(NOW - 7 * DAY, NOW, {"5m": None, "1h": None}) == [Read(RAW, NOW - 7 * DAY, NOW + 1)]


def test_reference_aggregation_and_expansion() -> None:
    start = NOW - NOW % HOUR
    samples = [(start + i * MINUTE, float(i), float(i) + 0.5) for i in range(7)]
    rows = slot_aggregate(samples, FIVE)
    assert list(rows) == [start]
    assert rows[start][0] == (2.0, 4.5) and rows[start][1] == (5.5, 6.5) and rows[start][2:] == [None] * 10
    assert expand_rows(start, FIVE, [2.0, None, 3.0], [4.0, None, None]) == [
        (start, 2.0, 4.0),
        (start + 600, 3.0, 3.0),
    ]


def test_resample_and_since() -> None:
    points = [(0, 1.0, 1.0), (10, 3.0, 3.0), (50, 5.0, 5.0)]
    assert resample(points, 0, 60, 3) == [2.0, None, 5.0]
    assert parse_since("24h") == 86400 and parse_since("7d") == 7 * DAY and parse_since("90m") == 5400
    for bad in ("", "24", "h", "-1h", "2y", "1.5h"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad)
