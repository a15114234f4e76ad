"""Evolution webhook bodies into rows of the whatsapp schema."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from nextmavens.whatsapp.rows import EventRow, MessageRow, row_from_webhook


def _upsert(**data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "messages.upsert",
        "instance": "shop--main",
        "data": {
            "key": {"remoteJid": "5511999999999@s.whatsapp.net", "fromMe": False, "id": "3EB0C767D26A1D8A"},
            "pushName": "Ana",
            "message": {"conversation": "hello"},
            "messageType": "conversation",
            "messageTimestamp": 1764662400,
        },
        "date_time": "2026-12-02T05:00:00.000Z",
        "apikey": None,
    }
    body["data"].update(data)
    return body


def _row(body: dict[str, Any]) -> MessageRow | EventRow:
    return row_from_webhook(body, json.dumps(body).encode(), "main")


def test_a_text_message_becomes_a_message_row() -> None:
    body = _upsert()
    row = _row(body)
    assert row == MessageRow(
        instance="main",
        message_id="3EB0C767D26A1D8A",
        remote_jid="5511999999999@s.whatsapp.net",
        from_me=False,
        type="conversation",
        text="hello",
        payload=body,
        sent_at=datetime(2025, 12, 2, 8, 0, tzinfo=UTC),
    )


def test_a_sent_message_is_a_message_row_too() -> None:
    body = _upsert(key={"remoteJid": "5511@s.whatsapp.net", "fromMe": True, "id": "BAE5"})
    body["event"] = "send.message"
    row = _row(body)
    assert isinstance(row, MessageRow)
    assert (row.message_id, row.from_me) == ("BAE5", True)


def test_extended_text_is_the_text_when_there_is_no_conversation() -> None:
    extended = {"extendedTextMessage": {"text": "see https://x.test"}}
    row = _row(_upsert(message=extended, messageType="extendedTextMessage"))
    assert isinstance(row, MessageRow)
    assert (row.type, row.text) == ("extendedTextMessage", "see https://x.test")


def test_media_has_no_text_and_keeps_its_payload() -> None:
    body = _upsert(message={"imageMessage": {"url": "https://mmg.test/x"}}, messageType="imageMessage")
    row = _row(body)
    assert isinstance(row, MessageRow)
    assert row.text is None and row.payload["data"]["message"]["imageMessage"]["url"] == "https://mmg.test/x"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1764662400, datetime(2025, 12, 2, 8, 0, tzinfo=UTC)),
        ("1764662401", datetime(2025, 12, 2, 8, 0, 1, tzinfo=UTC)),
        (1764662400.5, datetime(2025, 12, 2, 8, 0, 0, 500000, tzinfo=UTC)),
        (None, None),
    ],
)
def test_the_timestamp_is_epoch_seconds_in_utc(timestamp: object, expected: datetime | None) -> None:
    row = _row(_upsert(messageTimestamp=timestamp))
    assert isinstance(row, MessageRow)
    assert row.sent_at == expected


def test_a_missing_timestamp_is_null() -> None:
    body = _upsert()
    del body["data"]["messageTimestamp"]
    del body["data"]["messageType"]
    row = _row(body)
    assert isinstance(row, MessageRow)
    assert (row.sent_at, row.type) == (None, None)


@pytest.mark.parametrize("timestamp", ["soon", True, 1e300, float("nan"), {"low": 1, "high": 0}])
def test_a_bad_timestamp_names_the_field(timestamp: object) -> None:
    with pytest.raises(ValueError, match=r"data\.messageTimestamp"):
        _row(_upsert(messageTimestamp=timestamp))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": None}, "'data.key'"),
        ({"key": {"remoteJid": "a@s.whatsapp.net", "fromMe": False}}, "'data.key.id'"),
        ({"key": {"remoteJid": "a@s.whatsapp.net", "fromMe": False, "id": ""}}, "'data.key.id'"),
        ({"key": {"fromMe": False, "id": "X"}}, "'data.key.remoteJid'"),
        ({"key": {"remoteJid": "a@s.whatsapp.net", "fromMe": "false", "id": "X"}}, "'data.key.fromMe'"),
        ({"messageType": 3}, "'data.messageType'"),
    ],
)
def test_a_message_without_what_its_row_needs_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _row(_upsert(**change))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "messages.upsert", "data": []}, "'data'"),
        ({"event": "messages.upsert"}, "'data'"),
        ({"data": {}}, "'event'"),
        ({"event": 7, "data": {}}, "'event'"),
    ],
)
def test_a_malformed_envelope_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _row(body)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        row_from_webhook([1, 2], b"[1, 2]", "main")  # type: ignore[arg-type]


def test_a_connection_update_is_an_event_keyed_by_its_bytes() -> None:
    body = {"event": "connection.update", "instance": "shop--main", "data": {"state": "open", "statusReason": 200}}
    raw = json.dumps(body).encode()
    row = row_from_webhook(body, raw, "main")
    assert row == EventRow(
        instance="main",
        event="connection.update",
        state="open",
        event_key=hashlib.sha256(raw).hexdigest(),
        payload=body,
    )
    # a resend is the same bytes; another body (even the same event) another key
    assert row_from_webhook(body, raw, "main") == row
    assert isinstance(other := row_from_webhook(body, raw + b" ", "main"), EventRow)
    assert other.event_key != row.event_key


def test_an_event_without_a_state_has_none() -> None:
    body = {"event": "qrcode.updated", "data": {"qrcode": {"code": "2@abc", "base64": "data:image/png;base64,AA"}}}
    row = _row(body)
    assert isinstance(row, EventRow)
    assert (row.event, row.state) == ("qrcode.updated", None)
    assert isinstance(odd := _row({"event": "contacts.update", "data": [{"id": "x"}]}), EventRow)
    assert odd.state is None


def test_the_instance_is_the_manifest_name_given() -> None:
    assert _row(_upsert()).instance == "main"
    with pytest.raises(ValueError, match="instance"):
        row_from_webhook(_upsert(), b"{}", "")
