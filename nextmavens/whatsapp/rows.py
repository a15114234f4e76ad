"""The row one Evolution webhook becomes in the project's whatsapp schema. Pure: no I/O.

    row_from_webhook(body: Mapping[str, Any], raw: bytes, instance: str) -> MessageRow | EventRow

`body` is the parsed JSON request body, Evolution's envelope `{event, instance, data, ...}`; `raw` the body's
bytes as received; `instance` the manifest's instance name (not Evolution's `<ref>--<instance>`). Events
`messages.upsert` and `send.message` give a MessageRow (table whatsapp.messages, one row per message id);
every other event an EventRow (whatsapp.events, keyed by the sha256 of `raw`: Evolution resends an event as
the same bytes). A body that lacks what its row needs raises ValueError naming the field, e.g. `data.key.id`.
whatsapp/store.py writes the row.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MESSAGE_EVENTS = frozenset({"messages.upsert", "send.message"})


@dataclass(frozen=True)
class MessageRow:
    """A row of whatsapp.messages (the columns the receiver fills; the rest take their defaults)."""

    instance: str
    message_id: str  # data.key.id
    remote_jid: str  # data.key.remoteJid
    from_me: bool  # data.key.fromMe
    type: str | None  # data.messageType
    text: str | None  # data.message.conversation, or data.message.extendedTextMessage.text
    payload: Mapping[str, Any]  # the whole body
    sent_at: datetime | None  # data.messageTimestamp (epoch seconds), in UTC


@dataclass(frozen=True)
class EventRow:
    """A row of whatsapp.events."""

    instance: str
    event: str  # dotted, as Evolution sends it: connection.update
    state: str | None  # data.state when present
    event_key: str  # hex sha256 of the raw body
    payload: Mapping[str, Any]


def row_from_webhook(body: Mapping[str, Any], raw: bytes, instance: str) -> MessageRow | EventRow:
    if not isinstance(body, Mapping):
        raise ValueError("webhook body: expected a JSON object")
    if not isinstance(instance, str) or not instance:
        raise ValueError("instance: expected the manifest's instance name")
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise ValueError("webhook body field 'event': expected a non-empty string")
    data = body.get("data")
    if event in MESSAGE_EVENTS:
        return _message_row(body, data, instance)
    state = data.get("state") if isinstance(data, Mapping) else None
    return EventRow(
        instance=instance,
        event=event,
        state=state if isinstance(state, str) else None,
        event_key=hashlib.sha256(raw).hexdigest(),
        payload=body,
    )


def _message_row(body: Mapping[str, Any], data: object, instance: str) -> MessageRow:
    if not isinstance(data, Mapping):
        raise ValueError("webhook body field 'data': expected an object")
    key = data.get("key")
    if not isinstance(key, Mapping):
        raise ValueError("webhook body field 'data.key': expected an object")
    from_me = key.get("fromMe")
    if not isinstance(from_me, bool):
        raise ValueError("webhook body field 'data.key.fromMe': expected true or false")
    message_type = data.get("messageType")
    if message_type is not None and not isinstance(message_type, str):
        raise ValueError("webhook body field 'data.messageType': expected a string")
    return MessageRow(
        instance=instance,
        message_id=_text(key, "id", "data.key.id"),
        remote_jid=_text(key, "remoteJid", "data.key.remoteJid"),
        from_me=from_me,
        type=message_type,
        text=_message_text(data.get("message")),
        payload=body,
        sent_at=_sent_at(data.get("messageTimestamp")),
    )


def _text(where: Mapping[str, Any], name: str, field: str) -> str:
    value = where.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"webhook body field {field!r}: expected a non-empty string")
    return value


def _message_text(message: object) -> str | None:
    """The text of a text message; None for media and anything else (the payload keeps it all)."""
    if not isinstance(message, Mapping):
        return None
    conversation = message.get("conversation")
    if isinstance(conversation, str):
        return conversation
    extended = message.get("extendedTextMessage")
    text = extended.get("text") if isinstance(extended, Mapping) else None
    return text if isinstance(text, str) else None


def _sent_at(value: object) -> datetime | None:
    """Epoch seconds (a number, or digits in a string) as a UTC time; None when absent."""
    if value is None:
        return None
    field = "webhook body field 'data.messageTimestamp'"
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected epoch seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{field}: {value} seconds is out of range") from None
