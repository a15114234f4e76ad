"""Write one webhook's row (whatsapp/rows.py) into the project's whatsapp schema.

    insert_row(conn: psycopg.Connection, row: MessageRow | EventRow, forward_pending: bool) -> bool
    insert_row_async(conn: psycopg.AsyncConnection, ...)  the same on the webhook receiver's connections

`conn` is a connection to the project's database logged in as the project's owner role (never a superuser:
the tables are the engine's, see engine/sqlgen.whatsapp_statements). The statement runs in the caller's
transaction and commits nothing: answer Evolution with 2xx only after the caller's commit. A row already
there (the same instance and message id, or the same event bytes) is left as it is: returns False; True
when a row was inserted. `forward_pending`: the instance has a `webhook_url` to forward the row to; the
row is then due at once (forward_next_at = now()).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from nextmavens.naming import WHATSAPP_SCHEMA
from nextmavens.whatsapp.rows import EventRow, MessageRow

MESSAGE_COLUMNS = ("instance", "message_id", "remote_jid", "from_me", "type", "text", "sent_at")
EVENT_COLUMNS = ("instance", "event", "state", "event_key")


def _statement(table: str, columns: tuple[str, ...], unique: tuple[str, str]) -> sql.Composed:
    named = (*columns, "payload", "forward_pending")
    return sql.SQL(
        "INSERT INTO {table} ({columns}, forward_next_at) VALUES ({values}, CASE WHEN {pending} THEN now() END)"
        " ON CONFLICT ({unique}) DO NOTHING"
    ).format(
        table=sql.Identifier(WHATSAPP_SCHEMA, table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in named),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in named),
        pending=sql.Placeholder("forward_pending"),
        unique=sql.SQL(", ").join(sql.Identifier(c) for c in unique),
    )


# Composed once: the receiver runs one of them per webhook.
INSERT_MESSAGE = _statement("messages", MESSAGE_COLUMNS, ("instance", "message_id"))
INSERT_EVENT = _statement("events", EVENT_COLUMNS, ("instance", "event_key"))


def insert_statement(row: MessageRow | EventRow, forward_pending: bool) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement and its parameters for `row`."""
    statement, columns = (
        (INSERT_MESSAGE, MESSAGE_COLUMNS) if isinstance(row, MessageRow) else (INSERT_EVENT, EVENT_COLUMNS)
    )
    values: dict[str, Any] = {column: getattr(row, column) for column in columns}
    values["payload"] = Jsonb(dict(row.payload))
    values["forward_pending"] = forward_pending
    return statement, values


def insert_row(conn: psycopg.Connection, row: MessageRow | EventRow, forward_pending: bool) -> bool:
    return conn.execute(*insert_statement(row, forward_pending)).rowcount == 1


async def insert_row_async(
    conn: psycopg.AsyncConnection[Any], row: MessageRow | EventRow, forward_pending: bool
) -> bool:
    cursor = await conn.execute(*insert_statement(row, forward_pending))
    return cursor.rowcount == 1
