"""A webhook's row in the project's `whatsapp` schema: which table, which columns, and the idempotent insert.

`whatsapp.messages` holds `messages.upsert` and `send.message` (keyed by instance and WhatsApp's message id),
`whatsapp.events` every other event (keyed by instance and the sha256 of the body: a resent event is the same
bytes). A resent webhook therefore adds no row. The insert runs on the receiver's connection, logged in as the
project's owner role with autocommit: when it returns, the row is committed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

MESSAGE_EVENTS = frozenset({"messages.upsert", "send.message"})
MAX_EPOCH_S = 253402300799  # 9999-12-31: a later "timestamp" is not one


@dataclass(frozen=True)
class MessageRow:
    instance: str  # the manifest's instance name
    message_id: str
    remote_jid: str
    from_me: bool
    type: str | None
    sent_at: datetime | None
    text: str | None = field(repr=False)  # message contents never reach a log through repr()
    payload: str = field(repr=False)  # the body as received (JSON text)


@dataclass(frozen=True)
class EventRow:
    instance: str
    event: str
    state: str | None
    event_key: str  # hex sha256 of the raw body
    payload: str = field(repr=False)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _sent_at(value: Any) -> datetime | None:
    """data.messageTimestamp: epoch seconds as a number or a numeric string."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_EPOCH_S:
        return None
    return datetime.fromtimestamp(value, UTC)


def _message_text(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    text = _text(message.get("conversation"))
    if text is None and isinstance(message.get("extendedTextMessage"), dict):
        text = _text(message["extendedTextMessage"].get("text"))
    return text


def row_from_webhook(body: dict[str, Any], raw: bytes, instance: str) -> MessageRow | EventRow:
    """The row for a webhook body (a JSON object with a string `event`). A message event without the key a
    message row needs is kept as an event rather than refused: nothing Evolution sends is dropped."""
    event = body["event"]
    payload = raw.decode("utf-8")
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    key = data.get("key")
    if event in MESSAGE_EVENTS and isinstance(key, dict):
        message_id, remote_jid, from_me = key.get("id"), key.get("remoteJid"), key.get("fromMe")
        if isinstance(message_id, str) and message_id and isinstance(remote_jid, str):
            return MessageRow(
                instance=instance,
                message_id=message_id,
                remote_jid=remote_jid,
                from_me=from_me is True,
                type=_text(data.get("messageType")),
                text=_message_text(data.get("message")),
                sent_at=_sent_at(data.get("messageTimestamp")),
                payload=payload,
            )
    return EventRow(
        instance=instance,
        event=event,
        state=_text(data.get("state")),
        event_key=hashlib.sha256(raw).hexdigest(),
        payload=payload,
    )


# Schema-qualified, and the receiver's sessions run with search_path=pg_catalog: nothing the tenant created is
# looked up by name.
INSERT_MESSAGE = (
    "INSERT INTO whatsapp.messages"
    " (instance, message_id, remote_jid, from_me, type, text, sent_at, payload, forward_pending)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)"
    " ON CONFLICT (instance, message_id) DO NOTHING"
)
INSERT_EVENT = (
    "INSERT INTO whatsapp.events (instance, event, state, event_key, payload, forward_pending)"
    " VALUES (%s, %s, %s, %s, %s::jsonb, %s)"
    " ON CONFLICT (instance, event_key) DO NOTHING"
)


async def insert_row(conn: AsyncConnection[Any], row: MessageRow | EventRow, forward_pending: bool) -> bool:
    """True when the row was added, False when it was there already (a resent webhook)."""
    if isinstance(row, MessageRow):
        params: tuple[Any, ...] = (
            row.instance,
            row.message_id,
            row.remote_jid,
            row.from_me,
            row.type,
            row.text,
            row.sent_at,
            row.payload,
            forward_pending,
        )
        cursor = await conn.execute(INSERT_MESSAGE, params)
    else:
        params = (row.instance, row.event, row.state, row.event_key, row.payload, forward_pending)
        cursor = await conn.execute(INSERT_EVENT, params)
    return cursor.rowcount == 1
