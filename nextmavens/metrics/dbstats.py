"""Each project database's size, connections and committed plus rolled-back transactions: one query on the
cluster's statistics views a minute (the size every SIZE_EVERY minutes: it walks the database's files)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from nextmavens.naming import project_names

SIZE_EVERY = 5


@dataclass(frozen=True)
class DatabaseStats:
    connections: int
    transactions: int  # cumulative commits + rollbacks since the statistics were reset
    size_bytes: int | None


def database_stats(conn: psycopg.Connection, refs: list[str], with_size: bool) -> dict[str, DatabaseStats]:
    """{ref: stats} for the refs whose database exists."""
    databases = {project_names(ref).database: ref for ref in refs}
    if not databases:
        return {}
    # sizes through metric_database_sizes (migration 1020): the collector's role may not call pg_database_size on a
    # project's database itself; one call for all the databases
    size, sizes = "NULL::bigint", ""
    if with_size:
        size, sizes = "z.size_bytes", " LEFT JOIN metric_database_sizes(%(names)s) z ON z.datname = s.datname"
    rows = conn.execute(
        f"SELECT s.datname, s.numbackends, s.xact_commit + s.xact_rollback, {size}"  # noqa: S608 - fixed text
        f" FROM pg_stat_database s{sizes} WHERE s.datname = ANY(%(names)s)",
        {"names": list(databases)},
    ).fetchall()
    return {
        databases[name]: DatabaseStats(int(backends), int(xacts), None if size_bytes is None else int(size_bytes))
        for name, backends, xacts, size_bytes in rows
    }
