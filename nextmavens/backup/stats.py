"""Per-table row counts and order-independent checksums, to compare a restored database with its source.

The checksum is the sum of a 64-bit hash of each row, so it does not depend on row order and needs no
memory beyond one aggregate per table. Output settings are pinned so text forms render alike on both sides.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import psycopg
from psycopg import sql

from nextmavens.control.db import trusted_dsn

PINNED_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "1"),
)

TABLES_QUERY = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'"
    " ORDER BY 1, 2"
)


# A superuser session in a project's database must not follow settings its owner put on the database
# (ALTER DATABASE ... SET search_path = app, pg_catalog: a function of theirs named like a built-in one, such as
# hash_record_extended or pg_export_snapshot, would run as the superuser). Startup options outrank them.
safe_dsn = trusted_dsn


# Columns whose values are OIDs (regclass and friends, as Realtime's subscriptions hold): a restore gives the
# same objects new OIDs, so such rows are hashed by their text form (the objects' names) instead.
OID_COLUMNS = (
    "SELECT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0"
    " AND NOT a.attisdropped AND pg_catalog.format_type(a.atttypid, NULL) IN ('oid', 'regclass', 'regcollation',"
    " 'regconfig', 'regdictionary', 'regnamespace', 'regoper', 'regoperator', 'regproc', 'regprocedure',"
    " 'regrole', 'regtype'))"
)


def pin_settings(conn: psycopg.Connection) -> None:
    for name, value in PINNED_SETTINGS:
        conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))


def _one_table(conn: psycopg.Connection, schema: str, table: str) -> dict[str, Any]:
    """Row count and checksum. Each row is hashed with hash_record_extended (column by column, by each
    type's own hash: no text conversion, about twice as fast); a table with a column type that has no
    hash function (json, xml, point, ...) or with OID values falls back to hashing the row's text form.
    `(r.*)` names the whole row even when a column shares the alias's name. Savepoints keep a failed
    attempt from ending the caller's snapshot transaction."""
    relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    by_record = sql.SQL(
        "SELECT count(*), coalesce(sum(hash_record_extended(r.*, 0)::numeric), 0)::text FROM {} AS r"
    ).format(relation)
    by_text = sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended((r.*)::text, 0)::numeric), 0)::text FROM {} AS r"
    ).format(relation)
    has_oids = conn.execute(OID_COLUMNS, (schema, table)).fetchone()
    row = None
    if not (has_oids and has_oids[0]):
        try:
            with conn.transaction():
                row = conn.execute(by_record).fetchone()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported):
            row = None
    method = "record"
    if row is None:
        with conn.transaction():
            row = conn.execute(by_text).fetchone()
        method = "text"
    assert row is not None
    return {"rows": int(row[0]), "checksum": str(row[1]), "method": method}


def table_stats(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """{"schema.table": {"rows": n, "checksum": "..."}} for every ordinary table, in the current snapshot."""
    pin_settings(conn)
    tables = conn.execute(TABLES_QUERY).fetchall()
    return {f"{schema}.{table}": _one_table(conn, schema, table) for schema, table in tables}


def table_stats_parallel(dsn: str, workers: int = 2) -> dict[str, dict[str, Any]]:
    """The same figures over several connections (largest tables first), for a database nobody writes
    to, such as a freshly restored scratch database; no shared snapshot is needed there."""
    dsn = safe_dsn(dsn)
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'"
            " ORDER BY pg_total_relation_size(c.oid) DESC"
        ).fetchall()
    pending: queue.Queue[tuple[str, str]] = queue.Queue()
    for item in tables:
        pending.put(item)
    result: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                pin_settings(conn)
                while True:
                    try:
                        schema, table = pending.get_nowait()
                    except queue.Empty:
                        return
                    result[f"{schema}.{table}"] = _one_table(conn, schema, table)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(workers, len(tables))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return dict(sorted(result.items()))


def compare(source: dict[str, dict[str, Any]], restored: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every difference: a table missing on either side, or a different row count or checksum."""
    problems: list[dict[str, Any]] = []
    for name in sorted(set(source) | set(restored)):
        left, right = source.get(name), restored.get(name)
        if left is None or right is None:
            problems.append({"table": name, "problem": "missing in restore" if right is None else "extra"})
        elif left != right:
            problems.append({"table": name, "problem": "differs", "source": left, "restored": right})
    return problems
