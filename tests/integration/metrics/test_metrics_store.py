"""The metric tiers against a real PostgreSQL: generated minutes over simulated days, rolled up and pruned as the
collector does, compared with the pure reference (nextmavens/metrics/tiers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import metrics as store
from nextmavens.metrictiers import DAY, FIVE, HOUR, HOURLY, MINUTE, slot_aggregate

T0 = 1_790_000_000 - 1_790_000_000 % DAY  # a UTC midnight


@pytest.fixture
def control(fresh_pg) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    conn = connect_control(fresh_pg.dsn)
    try:
        yield conn
    finally:
        conn.close()


def value(series: str, ts: int) -> float:
    """A deterministic, varying value per series and minute (exact in a real: small integers and halves)."""
    return float((ts // MINUTE * (3 + len(series))) % 97) / 2


def flat(slots: list) -> list[float | None]:  # type: ignore[type-arg]
    return [v for slot in slots for v in (slot if slot is not None else (None, None))]


def run_minutes(conn: psycopg.Connection, ids: store.SeriesIds, start: int, end: int, every: int = 5) -> None:
    """Write a minute's batch for each minute of [start, end), maintaining every `every` minutes (as the collector)."""
    for ts in range(start, end, MINUTE):
        store.write_minute(
            conn,
            ids,
            ts,
            {
                "host": {"mem_pct": value("mem_pct", ts), "disk_pct": value("disk_pct", ts)},
                "acme/shop": {"requests": value("requests", ts), "cpu_pct:rest": value("cpu_pct:rest", ts)},
            },
        )
        if (ts // MINUTE) % every == 0:
            store.maintain(conn, ts)


def test_a_minute_written_twice_keeps_the_first(control: psycopg.Connection) -> None:
    ids = store.SeriesIds()
    assert store.write_minute(control, ids, T0, {"acme/shop": {"requests": 5.0}}) == 1
    assert store.write_minute(control, ids, T0, {"acme/shop": {"requests": 9.0}}) == 0
    assert store.latest(control, "acme/shop") == (T0, {"requests": 5.0})
    # A second writer's cache (a restarted collector) finds the same ids
    assert store.SeriesIds().ids(control, "acme/shop", ["requests"]) == ids.ids(control, "acme/shop", ["requests"])


def test_three_days_roll_up_like_the_reference_and_raw_is_pruned_after_48h(control: psycopg.Connection) -> None:
    ids = store.SeriesIds()
    end = T0 + 3 * DAY
    run_minutes(control, ids, T0, end, every=30)
    store.maintain(control, end)
    done = store.done_until(control)
    assert done == {"5m": end, "1h": end}

    # raw: only the last 48 h (whole minutes), everything older already rolled up
    (oldest,) = control.execute("SELECT min(ts) FROM metric_raw").fetchone()  # type: ignore[misc]
    assert oldest == end - 48 * HOUR

    # 5m: equal to the reference aggregation of the generated minutes
    series = ids.ids(control, "acme/shop", ["requests"])[0]
    reference = slot_aggregate(
        ((ts, value("requests", ts), value("requests", ts)) for ts in range(T0, end, MINUTE)), FIVE
    )
    stored = {
        hour: list(zip(avg, peak, strict=True))
        for hour, avg, peak in control.execute("SELECT hour, avg, max FROM metric_5m WHERE series = %s", (series,))
    }
    assert sorted(stored) == sorted(reference)
    for hour, slots in reference.items():
        assert flat(stored[hour]) == pytest.approx(flat(slots), rel=1e-5)

    # 1h from 5m: the hourly average is the mean of the 5-minute averages, the maximum their maximum
    hourly = slot_aggregate(
        ((ts, value("requests", ts), value("requests", ts)) for ts in range(T0, end, MINUTE)), HOURLY
    )
    rows = {
        day: list(zip(avg, peak, strict=True))
        for day, avg, peak in control.execute("SELECT day, avg, max FROM metric_1h WHERE series = %s", (series,))
    }
    assert sorted(rows) == [T0, T0 + DAY, T0 + 2 * DAY]
    for day, slots in hourly.items():
        assert flat(rows[day]) == pytest.approx(flat(slots), rel=1e-5)

    # 72 h back is read from the 5-minute tier (rolled up to the end), 24 h from raw minutes
    points = store.read_points(control, "acme/shop", end - 72 * HOUR, end)["requests"]
    times = [p[0] for p in points]
    assert times == list(range(T0, end, 5 * MINUTE))
    assert points[1][1] == pytest.approx(sum(value("requests", T0 + 300 + i * 60) for i in range(5)) / 5, rel=1e-5)
    day = store.read_points(control, "acme/shop", end - 24 * HOUR, end)["requests"]
    assert [p[0] for p in day] == list(range(end - 24 * HOUR, end, MINUTE))


def test_gaps_stay_empty_and_a_late_collector_catches_up(control: psycopg.Connection) -> None:
    ids = store.SeriesIds()
    run_minutes(control, ids, T0, T0 + 30 * MINUTE)
    # the collector is down for 3 hours, then runs again
    run_minutes(control, ids, T0 + 3 * HOUR + 30 * MINUTE, T0 + 4 * HOUR + 10 * MINUTE)
    assert store.done_until(control)["5m"] == T0 + 4 * HOUR
    series = ids.ids(control, "host", ["mem_pct"])[0]
    hours = dict(control.execute("SELECT hour, avg FROM metric_5m WHERE series = %s", (series,)).fetchall())
    assert sorted(hours) == [T0, T0 + 3 * HOUR]  # no row for hours without a sample
    assert hours[T0][6:] == [None] * 6  # the half hour without samples is empty, not zero
    assert hours[T0 + 3 * HOUR][:6] == [None] * 6


def test_a_year_is_bounded_by_retention(control: psycopg.Connection) -> None:
    """Simulated in days: hourly rows for 400 days, then one maintenance keeps 366 of them; 5m keeps 30 days."""
    ids = store.SeriesIds()
    series = ids.ids(control, "acme/shop", ["requests"])[0]
    now = T0 + 400 * DAY
    slots = [1.0] * 24
    with control.transaction():
        for day in range(T0, now, DAY):
            control.execute(
                "INSERT INTO metric_1h (series, day, avg, max) VALUES (%s, %s, %s, %s)", (series, day, slots, slots)
            )
        for hour in range(now - 40 * DAY, now, HOUR):
            control.execute(
                "INSERT INTO metric_5m (series, hour, avg, max) VALUES (%s, %s, %s, %s)",
                (series, hour, [1.0] * 12, [1.0] * 12),
            )
        control.execute("INSERT INTO metric_rollups VALUES ('5m', %s), ('1h', %s)", (now, now))
    result = store.maintain(control, now)
    assert result.pruned["1h"] == 400 - 366
    assert result.pruned["5m"] == 10 * 24
    (days,) = control.execute("SELECT count(*) FROM metric_1h").fetchone()  # type: ignore[misc]
    assert days == 366


def test_the_5m_tier_is_never_pruned_before_the_hourly_tier_holds_it(control: psycopg.Connection) -> None:
    ids = store.SeriesIds()
    series = ids.ids(control, "acme/shop", ["requests"])[0]
    now = T0 + 40 * DAY
    with control.transaction():
        for hour in range(T0, now, HOUR):
            control.execute(
                "INSERT INTO metric_5m (series, hour, avg, max) VALUES (%s, %s, %s, %s)",
                (series, hour, [1.0] * 12, [2.0] * 12),
            )
        control.execute("INSERT INTO metric_rollups VALUES ('5m', %s)", (now,))
    # hourly roll-up catches up first, so nothing is lost; then 5m keeps 30 days
    store.maintain(control, now)
    (days,) = control.execute("SELECT count(*) FROM metric_1h").fetchone()  # type: ignore[misc]
    assert days == 40
    (oldest,) = control.execute("SELECT min(hour) FROM metric_5m").fetchone()  # type: ignore[misc]
    assert oldest == now - 30 * DAY
