"""The rows of a project's email schema (engine/emailsql.py), written as the project's owner role.

Sent mail: a row per idempotency key is claimed before Resend is asked (claim_message), so the same key never sends
twice whoever asks again; the answer is recorded after (mark_sent / mark_failed). Delivery reports: a row per Svix
message id (record_event), the message's status moved only forward (STATUS_RANK). Received mail: a row per
(recipient, delivery id) (insert_inbound). Each function runs in the caller's transaction or autocommit session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from nextmavens.naming import EMAIL_SCHEMA

# A message's status moves only to a higher rank: a late `sent` report never undoes `delivered`.
STATUS_RANK = {
    "queued": 0,
    "failed": 1,
    "sent": 2,
    "delivery_delayed": 3,
    "delivered": 4,
    "bounced": 5,
    "complained": 6,
}
# Resend's webhook event types -> the status they record
EVENT_STATUS = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.delivery_delayed": "delivery_delayed",
    "email.bounced": "bounced",
    "email.complained": "complained",
}


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(EMAIL_SCHEMA, name)


@dataclass(frozen=True)
class MessageRow:
    id: int
    status: str
    provider_id: str | None
    error: str | None


# One round trip: the new row, or (the insert did nothing) the row an earlier send claimed.
_CLAIM = sql.SQL(
    "WITH made AS (INSERT INTO {t} (idempotency_key, to_addresses, subject, template) VALUES (%(key)s, %(to)s,"
    " %(subject)s, %(template)s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, status, provider_id, error)"
    " SELECT id, status, provider_id, error, true FROM made UNION ALL"
    " SELECT id, status, provider_id, error, false FROM {t} WHERE idempotency_key = %(key)s"
    " AND NOT EXISTS (SELECT 1 FROM made)"
).format(t=_table("messages"))
_SENT = sql.SQL(
    "UPDATE {t} SET provider_id = %s, sent_at = now(), error = NULL,"
    " status = CASE WHEN status IN ('queued', 'failed') THEN 'sent' ELSE status END,"
    " status_at = CASE WHEN status IN ('queued', 'failed') THEN now() ELSE status_at END WHERE id = %s"
).format(t=_table("messages"))
_FAILED = sql.SQL(
    "UPDATE {t} SET status = 'failed', error = %s, status_at = now() WHERE id = %s AND status IN ('queued', 'failed')"
).format(t=_table("messages"))


def claim_message(
    conn: psycopg.Connection, key: str, to: list[str], subject: str, template: str | None
) -> tuple[MessageRow, bool]:
    """(the row for `key`, whether this call made it). An existing row was claimed by an earlier send."""
    row = conn.execute(_CLAIM, {"key": key, "to": to, "subject": subject, "template": template}).fetchone()
    if row is None:  # a concurrent claim of the same key not committed yet when this one looked: ask again
        row = conn.execute(_CLAIM, {"key": key, "to": to, "subject": subject, "template": template}).fetchone()
    assert row is not None
    return MessageRow(*row[:4]), bool(row[4])


def mark_sent(conn: psycopg.Connection, message_id: int, provider_id: str) -> None:
    conn.execute(_SENT, (provider_id, message_id))


def mark_failed(conn: psycopg.Connection, message_id: int, error: str) -> None:
    conn.execute(_FAILED, (error[:500], message_id))


_EVENT = sql.SQL(
    "INSERT INTO {t} (svix_id, type, provider_id, payload) VALUES (%s, %s, %s, %s) ON CONFLICT (svix_id) DO NOTHING"
).format(t=_table("events"))
_ADVANCE = sql.SQL(
    "UPDATE {t} SET status = %(status)s, status_at = now() WHERE provider_id = %(provider_id)s"
    " AND (CASE status {ranks} END) < %(rank)s"
).format(
    t=_table("messages"),
    ranks=sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(s), sql.Literal(r)) for s, r in STATUS_RANK.items()
    ),
)


async def record_event(
    conn: psycopg.AsyncConnection[Any], svix_id: str, event_type: str, provider_id: str | None, payload: dict[str, Any]
) -> bool:
    """Store one delivery report and move its message's status; False when this svix id was stored before (nothing
    changes). One transaction: both or neither."""
    async with conn.transaction():
        cursor = await conn.execute(_EVENT, (svix_id, event_type, provider_id, Jsonb(payload)))
        if cursor.rowcount != 1:
            return False
        status = EVENT_STATUS.get(event_type)
        if status is not None and provider_id:
            await conn.execute(_ADVANCE, {"status": status, "provider_id": provider_id, "rank": STATUS_RANK[status]})
    return True


INBOUND_COLUMNS = ("delivery_id", "to_address", "from_address", "subject", "message_id", "text", "html")
_INBOUND = sql.SQL(
    "INSERT INTO {t} ({columns}, headers, attachments) VALUES ({values}, %(headers)s, %(attachments)s)"
    " ON CONFLICT (to_address, delivery_id) DO NOTHING"
).format(
    t=_table("inbound"),
    columns=sql.SQL(", ").join(sql.Identifier(c) for c in INBOUND_COLUMNS),
    values=sql.SQL(", ").join(sql.Placeholder(c) for c in INBOUND_COLUMNS),
)


async def insert_inbound(conn: psycopg.AsyncConnection[Any], row: dict[str, Any]) -> bool:
    """One received message; False when the same delivery to the same address was stored before."""
    values = {c: row.get(c) for c in INBOUND_COLUMNS}
    values["headers"] = Jsonb(row.get("headers") or [])
    values["attachments"] = Jsonb(row.get("attachments") or [])
    cursor = await conn.execute(_INBOUND, values)
    return cursor.rowcount == 1


_ATTACHMENT = sql.SQL(
    "SELECT attachments -> %(index)s FROM {t} WHERE to_address = %(to)s AND delivery_id = %(delivery)s"
).format(t=_table("inbound"))
# Only the description the worker sent (same sha256), and only once: a second upload of it changes nothing.
_SET_ATTACHMENT = sql.SQL(
    "UPDATE {t} SET attachments = jsonb_set(attachments, ARRAY[%(index)s::text], %(item)s)"
    " WHERE to_address = %(to)s AND delivery_id = %(delivery)s"
    " AND attachments -> %(index)s ->> 'sha256' = %(sha256)s AND NOT (attachments -> %(index)s ? 'url')"
).format(t=_table("inbound"))


async def inbound_attachment(
    conn: psycopg.AsyncConnection[Any], to: str, delivery_id: str, index: int
) -> dict[str, Any] | None:
    """The stored description of a received message's attachment `index`, or None (no such message or attachment)."""
    cursor = await conn.execute(_ATTACHMENT, {"index": index, "to": to, "delivery": delivery_id})
    row = await cursor.fetchone()
    return row[0] if row and isinstance(row[0], dict) else None


async def set_inbound_attachment(
    conn: psycopg.AsyncConnection[Any], to: str, delivery_id: str, index: int, item: dict[str, Any]
) -> bool:
    """Replace attachment `index`'s description with `item` (its URL added) when it still has the same sha256 and no
    URL; False when it was done before."""
    values = {"index": index, "to": to, "delivery": delivery_id, "sha256": item.get("sha256"), "item": Jsonb(item)}
    cursor = await conn.execute(_SET_ATTACHMENT, values)
    return cursor.rowcount == 1
