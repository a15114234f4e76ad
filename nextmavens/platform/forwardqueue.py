"""A project's WhatsApp rows waiting to be forwarded, read and marked as the project's owner role.

The session logs in as the owner with its own password, never a superuser's (the tables' policies let the owner
role read and update them), with `search_path` pg_catalog so no object the tenant creates is resolved instead of
a built-in, and bounded statement and lock times. Only the forward_* columns are ever written, with the time of the
outcome (clock_timestamp(): a batch's transaction began before its posts, which may take seconds each).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from nextmavens.control.db import owner_dsn
from nextmavens.platform.migrationrun import NotOwnerSession, OwnerLoginFailed
from nextmavens.whatsapp.forwarding import PendingRow, RowKind

APPLICATION_NAME = "nextmavens-forwarder"
TABLES: dict[RowKind, str] = {"message": "messages", "event": "events"}
# messages have no event column: the payload names the event it came with
EVENT_COLUMN: dict[RowKind, sql.Composable] = {
    "message": sql.SQL("payload ->> 'event'"),
    "event": sql.Identifier("event"),
}


@contextmanager
def owner_connection(dsn: str, ref: str, password: str, statement_timeout_ms: int) -> Iterator[psycopg.Connection]:
    """A transaction-per-block session of the project's owner role in its database."""
    conninfo = owner_dsn(
        dsn, ref, password, statement_timeout_ms, application_name=APPLICATION_NAME, search_path="pg_catalog"
    )
    try:
        conn = psycopg.connect(conninfo, connect_timeout=10)
    except psycopg.OperationalError:
        raise OwnerLoginFailed(f"the owner role of {ref} cannot log in to its database") from None
    with conn:
        row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user").fetchone()
        conn.rollback()
        if row is None or row[0]:
            raise NotOwnerSession(f"the forwarder's session for {ref} is not its owner's")
        yield conn


def tables_exist(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT to_regclass('whatsapp.messages') IS NOT NULL AND to_regclass('whatsapp.events') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


def claim_due(conn: psycopg.Connection, kind: RowKind, instances: list[str], limit: int) -> list[PendingRow]:
    """Rows of `instances` due now, oldest first, locked until the transaction ends; rows another session holds
    are skipped, not waited for."""
    query = sql.SQL(
        "SELECT id, instance, {event}, payload, received_at, forward_attempts FROM {table}"
        " WHERE forward_pending AND (forward_next_at IS NULL OR forward_next_at <= now()) AND instance = ANY(%s)"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
    ).format(event=EVENT_COLUMN[kind], table=sql.Identifier("whatsapp", TABLES[kind]))
    rows = conn.execute(query, (instances, limit)).fetchall()
    return [PendingRow(kind, int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def mark_delivered(conn: psycopg.Connection, row: PendingRow) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {table} SET forward_pending = false, forwarded_at = clock_timestamp(), forward_next_at = NULL"
            " WHERE id = %s"
        ).format(table=sql.Identifier("whatsapp", TABLES[row.kind])),
        (row.id,),
    )


def mark_failed(conn: psycopg.Connection, row: PendingRow, delay_s: float | None) -> None:
    """One more failed attempt: tried again after `delay_s`, or (None) given up, never forwarded."""
    table = sql.Identifier("whatsapp", TABLES[row.kind])
    if delay_s is None:
        query = sql.SQL(
            "UPDATE {table} SET forward_attempts = forward_attempts + 1, forward_pending = false,"
            " forward_next_at = NULL, forwarded_at = NULL WHERE id = %s"
        ).format(table=table)
        conn.execute(query, (row.id,))
        return
    query = sql.SQL(
        "UPDATE {table} SET forward_attempts = forward_attempts + 1,"
        " forward_next_at = clock_timestamp() + make_interval(secs => %s) WHERE id = %s"
    ).format(table=table)
    conn.execute(query, (delay_s, row.id))
