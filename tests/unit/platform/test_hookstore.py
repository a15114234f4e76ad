"""Which row a webhook becomes, and which bodies the receiver takes at all."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from nextmavens.platform.hookreceiver import parse_body
from nextmavens.platform.hookstore import EventRow, MessageRow, row_from_webhook


def upsert(**data: Any) -> dict[str, Any]:
    base = {
        "key": {"remoteJid": "5511999990000@s.whatsapp.net", "fromMe": False, "id": "3EB0ABC"},
        "pushName": "Ana",
        "message": {"conversation": "hello"},
        "messageType": "conversation",
        "messageTimestamp": 1_764_660_000,
    }
    return {"event": "messages.upsert", "instance": "shop--sales", "data": {**base, **data}}


def row(body: dict[str, Any]) -> MessageRow | EventRow:
    return row_from_webhook(body, json.dumps(body).encode(), "sales")


def test_a_message_becomes_a_message_row() -> None:
    body = upsert()
    got = row(body)
    assert isinstance(got, MessageRow)
    assert (got.instance, got.message_id, got.remote_jid, got.from_me, got.type, got.text) == (
        "sales",
        "3EB0ABC",
        "5511999990000@s.whatsapp.net",
        False,
        "conversation",
        "hello",
    )
    assert got.sent_at == datetime.fromtimestamp(1_764_660_000, UTC)
    assert json.loads(got.payload) == body


def test_extended_text_media_and_odd_timestamps() -> None:
    extended = row(upsert(message={"extendedTextMessage": {"text": "quoted"}}, messageTimestamp="1764660000"))
    assert isinstance(extended, MessageRow) and extended.text == "quoted" and extended.sent_at is not None
    image = row(upsert(message={"imageMessage": {"url": "x"}}, messageType="imageMessage", messageTimestamp=None))
    assert isinstance(image, MessageRow) and image.text is None and image.sent_at is None
    odd = row(upsert(messageTimestamp={"low": 1, "high": 0}))
    assert isinstance(odd, MessageRow) and odd.sent_at is None


def test_send_message_is_a_message_too() -> None:
    body = {**upsert(), "event": "send.message"}
    assert isinstance(row(body), MessageRow)


def test_other_events_and_keyless_messages_become_events_keyed_by_the_body() -> None:
    body = {"event": "connection.update", "instance": "shop--sales", "data": {"state": "open", "statusReason": 200}}
    raw = json.dumps(body).encode()
    got = row_from_webhook(body, raw, "sales")
    assert isinstance(got, EventRow)
    assert (got.event, got.state, got.event_key) == ("connection.update", "open", hashlib.sha256(raw).hexdigest())
    keyless = row({"event": "messages.upsert", "instance": "shop--sales", "data": {"message": {}}})
    assert isinstance(keyless, EventRow) and keyless.state is None


def test_the_payload_never_shows_in_repr() -> None:
    assert "hello" not in repr(row(upsert()))


def test_bodies_the_receiver_refuses() -> None:
    assert parse_body(json.dumps(upsert()).encode()) is not None
    for raw in (
        b"",
        b"not json",
        b"[1, 2]",
        b'{"event": "messages.upsert"}',
        b'{"event": 1, "instance": "shop--sales"}',
        b'{"event": "x", "instance": "shop--sales", "n": NaN}',
        b'\xff{"event": "x", "instance": "y"}',
    ):
        assert parse_body(raw) is None, raw
