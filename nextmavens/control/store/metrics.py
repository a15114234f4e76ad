"""Metrics in the control database (tables from migration 1000_metrics.sql).

Writes come from the collector (`nextmavens/metrics/collector.py`): one batch a minute, the roll-ups and the
retention; reads from `nextmavens metrics`, the platform service and the dashboard. The arithmetic (which rows
are due, what may be pruned, which tier serves which span) is `nextmavens/metrictiers.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg

from nextmavens.metrictiers import FIVE, HOURLY, RAW, Read, Tier, expand_rows, prune_before, read_plan, rollup_window


class SeriesIds:
    """(scope, name) -> series id, created on first use and cached: a minute's batch costs no lookup."""

    def __init__(self) -> None:
        self.scopes: dict[str, int] = {}
        self.series: dict[tuple[str, str], int] = {}

    def scope_id(self, conn: psycopg.Connection, scope: str) -> int:
        known = self.scopes.get(scope)
        if known is not None:
            return known
        row = conn.execute(
            "WITH new AS (INSERT INTO metric_scopes (name) VALUES (%s) ON CONFLICT (name) DO NOTHING RETURNING id)"
            " SELECT id FROM new UNION ALL SELECT id FROM metric_scopes WHERE name = %s",
            (scope, scope),
        ).fetchone()
        assert row is not None
        self.scopes[scope] = int(row[0])
        return self.scopes[scope]

    def ids(self, conn: psycopg.Connection, scope: str, names: Iterable[str]) -> list[int]:
        wanted = list(names)
        missing = [name for name in wanted if (scope, name) not in self.series]
        if missing:
            scope_id = self.scope_id(conn, scope)
            conn.execute(
                "INSERT INTO metric_series (scope, name) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (scope_id, missing),
            )
            for series_id, name in conn.execute(
                "SELECT id, name FROM metric_series WHERE scope = %s AND name = ANY(%s)", (scope_id, missing)
            ):
                self.series[(scope, name)] = int(series_id)
        return [self.series[(scope, name)] for name in wanted]


def write_minute(
    conn: psycopg.Connection, ids: SeriesIds, ts: int, samples: Mapping[str, Mapping[str, float]]
) -> int:
    """One minute's samples ({scope: {series name: value}}) in one statement; a minute written twice (a restart
    within it) keeps the first. Returns the rows written."""
    scopes: list[int] = []
    series: list[str] = []
    values: list[str] = []
    for scope, named in samples.items():
        if not named:
            continue
        names = sorted(named)
        scopes.append(ids.scope_id(conn, scope))
        series.append("{" + ",".join(str(i) for i in ids.ids(conn, scope, names)) + "}")
        values.append("{" + ",".join(repr(float(named[name])) for name in names) + "}")
    if not scopes:
        return 0
    cursor = conn.execute(
        "INSERT INTO metric_raw (scope, ts, series, vals)"
        " SELECT s, %s, i::integer[], v::real[] FROM unnest(%s::smallint[], %s::text[], %s::text[]) AS b(s, i, v)"
        " ON CONFLICT DO NOTHING",
        (ts, scopes, series, values),
    )
    return cursor.rowcount


def done_until(conn: psycopg.Connection) -> dict[str, int | None]:
    rows: dict[str, int] = {str(t): int(d) for t, d in conn.execute("SELECT tier, done_until FROM metric_rollups")}
    return {tier.name: (int(rows[tier.name]) if tier.name in rows else None) for tier in (FIVE, HOURLY)}


_ROLLUP_5M = """
WITH samples AS (
    SELECT u.series, r.ts, u.val FROM metric_raw r, unnest(r.series, r.vals) AS u(series, val)
    WHERE r.ts >= %(start)s AND r.ts < %(end)s
), slots AS (
    SELECT series, ts - ts %% 3600 AS hour, (ts %% 3600) / 300 AS slot, avg(val)::real AS a, max(val) AS m
    FROM samples GROUP BY 1, 2, 3
), rows AS (SELECT DISTINCT series, hour FROM slots)
INSERT INTO metric_5m (series, hour, avg, max)
SELECT k.series, k.hour, array_agg(s.a ORDER BY g.slot), array_agg(s.m ORDER BY g.slot)
FROM rows k CROSS JOIN generate_series(0, 11) AS g(slot)
LEFT JOIN slots s ON s.series = k.series AND s.hour = k.hour AND s.slot = g.slot
GROUP BY k.series, k.hour
ON CONFLICT DO NOTHING
"""

_ROLLUP_1H = """
WITH slots5 AS (
    SELECT f.series, f.hour, u.a, u.m FROM metric_5m f, unnest(f.avg, f.max) AS u(a, m)
    WHERE f.hour >= %(start)s AND f.hour < %(end)s
), slots AS (
    SELECT series, hour - hour %% 86400 AS day, (hour %% 86400) / 3600 AS slot, avg(a)::real AS a, max(m) AS m
    FROM slots5 GROUP BY 1, 2, 3 HAVING count(a) > 0
), rows AS (SELECT DISTINCT series, day FROM slots)
INSERT INTO metric_1h (series, day, avg, max)
SELECT k.series, k.day, array_agg(s.a ORDER BY g.slot), array_agg(s.m ORDER BY g.slot)
FROM rows k CROSS JOIN generate_series(0, 23) AS g(slot)
LEFT JOIN slots s ON s.series = k.series AND s.day = k.day AND s.slot = g.slot
GROUP BY k.series, k.day
ON CONFLICT DO NOTHING
"""


def _oldest(conn: psycopg.Connection, tier: Tier) -> int | None:
    query = {
        RAW.name: "SELECT min(ts) FROM metric_raw",
        FIVE.name: "SELECT min(hour) FROM metric_5m",
    }[tier.name]
    row = conn.execute(query).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _set_done(conn: psycopg.Connection, tier: Tier, until: int) -> None:
    conn.execute(
        "INSERT INTO metric_rollups (tier, done_until) VALUES (%s, %s)"
        " ON CONFLICT (tier) DO UPDATE SET done_until = GREATEST(metric_rollups.done_until, EXCLUDED.done_until)",
        (tier.name, until),
    )


@dataclass(frozen=True)
class Maintenance:
    rolled: dict[str, tuple[int, int] | None]
    pruned: dict[str, int]


def maintain(conn: psycopg.Connection, now: int) -> Maintenance:
    """Roll up what is due (raw -> 5m for every finished hour, 5m -> 1h for every finished day), then delete what
    retention allows, each step in its own transaction. Safe to run at any time and from two processes."""
    rolled: dict[str, tuple[int, int] | None] = {}
    done: dict[str, int | None]
    for tier, source, query in ((FIVE, RAW, _ROLLUP_5M), (HOURLY, FIVE, _ROLLUP_1H)):
        with conn.transaction():
            done = done_until(conn)
            oldest = _oldest(conn, source) if done[tier.name] is None else None
            window = rollup_window(tier, done[tier.name], now, oldest, None if source is RAW else done[source.name])
            if window is not None:
                conn.execute(query, {"start": window[0], "end": window[1]})
                _set_done(conn, tier, window[1])
            rolled[tier.name] = window
    done = done_until(conn)
    pruned = {}
    with conn.transaction():
        pruned[RAW.name] = conn.execute(
            "DELETE FROM metric_raw WHERE ts < %s", (prune_before(RAW, now, done[FIVE.name]),)
        ).rowcount
        pruned[FIVE.name] = conn.execute(
            "DELETE FROM metric_5m WHERE hour < %s", (prune_before(FIVE, now, done[HOURLY.name]),)
        ).rowcount
        pruned[HOURLY.name] = conn.execute(
            "DELETE FROM metric_1h WHERE day < %s", (prune_before(HOURLY, now, None),)
        ).rowcount
    return Maintenance(rolled, pruned)


def series_names(conn: psycopg.Connection, scope: str) -> dict[int, str]:
    return {
        int(series_id): str(name)
        for series_id, name in conn.execute(
            "SELECT s.id, s.name FROM metric_series s JOIN metric_scopes c ON c.id = s.scope WHERE c.name = %s",
            (scope,),
        )
    }


def read_points(
    conn: psycopg.Connection, scope: str, since: int, now: int
) -> dict[str, list[tuple[int, float, float]]]:
    """{series name: [(ts, avg, max), ...]} of `scope` over [since, now], each span from the tier that serves it."""
    names = series_names(conn, scope)
    points: dict[str, list[tuple[int, float, float]]] = {name: [] for name in names.values()}
    if not names:
        return points
    ids = list(names)
    for read in read_plan(since, now, done_until(conn)):
        for series_id, ts, avg, peak in _read(conn, read, ids, scope):
            points[names[series_id]].extend(
                [(ts, float(avg), float(peak))] if read.tier is RAW else expand_rows(ts, read.tier, avg, peak)
            )
    for values in points.values():
        values.sort()
    return {name: [p for p in values if since <= p[0] <= now] for name, values in points.items()}


def _read(conn: psycopg.Connection, read: Read, ids: Sequence[int], scope: str) -> list[tuple]:  # type: ignore[type-arg]
    if read.tier is RAW:
        return conn.execute(
            "SELECT u.series, r.ts, u.val, u.val FROM metric_raw r"
            " JOIN metric_scopes c ON c.id = r.scope, unnest(r.series, r.vals) AS u(series, val)"
            " WHERE c.name = %s AND r.ts >= %s AND r.ts < %s",
            (scope, read.start, read.end),
        ).fetchall()
    table, column = ("metric_5m", "hour") if read.tier is FIVE else ("metric_1h", "day")
    first = read.start - read.start % read.tier.row
    return conn.execute(
        f"SELECT series, {column}, avg, max FROM {table}"  # noqa: S608 - two fixed table names
        f" WHERE series = ANY(%s) AND {column} >= %s AND {column} < %s",
        (list(ids), first, read.end),
    ).fetchall()


def latest(conn: psycopg.Connection, scope: str) -> tuple[int, dict[str, float]] | None:
    """The newest minute of `scope`: (ts, {series name: value})."""
    row = conn.execute(
        "SELECT r.ts, r.series, r.vals FROM metric_raw r JOIN metric_scopes c ON c.id = r.scope"
        " WHERE c.name = %s ORDER BY r.ts DESC LIMIT 1",
        (scope,),
    ).fetchone()
    if row is None:
        return None
    names = series_names(conn, scope)
    return int(row[0]), {names[i]: float(v) for i, v in zip(row[1], row[2], strict=True) if i in names}


def scopes(conn: psycopg.Connection) -> list[str]:
    return [str(name) for (name,) in conn.execute("SELECT name FROM metric_scopes ORDER BY name")]


def table_bytes(conn: psycopg.Connection) -> dict[str, int]:
    """Disk taken by each metrics table, indexes and TOAST included."""
    return {
        str(name): int(size)
        for name, size in conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class"
            " WHERE relname IN ('metric_scopes', 'metric_series', 'metric_raw', 'metric_5m', 'metric_1h',"
            " 'metric_rollups') AND relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
    }
