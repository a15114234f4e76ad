"""Write one webhook's row (whatsapp/rows.py) into the project's whatsapp schema.

    insert_row(conn: psycopg.Connection, row: MessageRow | EventRow, forward_pending: bool) -> bool

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


def insert_row(conn: psycopg.Connection, row: MessageRow | EventRow, forward_pending: bool) -> bool:
    values: dict[str, Any]
    if isinstance(row, MessageRow):
        table, unique = "messages", ("instance", "message_id")
        values = {
            "instance": row.instance,
            "message_id": row.message_id,
            "remote_jid": row.remote_jid,
            "from_me": row.from_me,
            "type": row.type,
            "text": row.text,
            "sent_at": row.sent_at,
        }
    else:
        table, unique = "events", ("instance", "event_key")
        values = {"instance": row.instance, "event": row.event, "state": row.state, "event_key": row.event_key}
    values["payload"] = Jsonb(dict(row.payload))
    values["forward_pending"] = forward_pending
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}, forward_next_at) VALUES ({values}, CASE WHEN {pending} THEN now() END)"
        " ON CONFLICT ({unique}) DO NOTHING"
    ).format(
        table=sql.Identifier(WHATSAPP_SCHEMA, table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in values),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in values),
        pending=sql.Placeholder("forward_pending"),
        unique=sql.SQL(", ").join(sql.Identifier(c) for c in unique),
    )
    return conn.execute(statement, values).rowcount == 1
