"""Webhook rows written as the project's owner into the tables apply created."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from nextmavens.whatsapp.rows import EventRow, row_from_webhook
from nextmavens.whatsapp.store import insert_row
from tests.support.engine import Stage
from tests.support.projects import write_project

UPSERT = {
    "event": "messages.upsert",
    "instance": "shop--main",
    "data": {
        "key": {"remoteJid": "5511999999999@s.whatsapp.net", "fromMe": False, "id": "3EB0C767"},
        "message": {"conversation": "olá"},
        "messageType": "conversation",
        "messageTimestamp": 1764662400,
    },
}
CONNECTED = {"event": "connection.update", "instance": "shop--main", "data": {"state": "open", "statusReason": 200}}


def test_rows_are_inserted_once_and_only_on_commit(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [{"name": "main"}]})
    stage.apply()
    message = row_from_webhook(UPSERT, json.dumps(UPSERT).encode(), "main")
    raw = json.dumps(CONNECTED).encode()
    event = row_from_webhook(CONNECTED, raw, "main")
    assert isinstance(event, EventRow)
    with stage.login("owner_shop", "shop", "shop") as conn:
        with conn.transaction():
            assert insert_row(conn, message, forward_pending=True) is True
            assert insert_row(conn, event, forward_pending=False) is True
        with conn.transaction():
            assert insert_row(conn, message, forward_pending=False) is False  # Evolution sent it again
            assert insert_row(conn, row_from_webhook(CONNECTED, raw, "main"), forward_pending=True) is False
        with conn.transaction(force_rollback=True):  # an answer never sent: Evolution retries, nothing stays
            other = row_from_webhook({**CONNECTED, "data": {"state": "close"}}, b"other bytes", "main")
            assert insert_row(conn, other, forward_pending=False) is True

    messages = stage.sql(
        "SELECT instance, message_id, remote_jid, from_me, type, text, payload, sent_at, forward_pending,"
        " forward_next_at IS NOT NULL, forward_attempts FROM whatsapp.messages",
        dbname="shop",
    )
    assert messages == [
        (
            "main",
            "3EB0C767",
            "5511999999999@s.whatsapp.net",
            False,
            "conversation",
            "olá",
            UPSERT,
            datetime(2025, 12, 2, 8, 0, tzinfo=UTC),
            True,
            True,
            0,
        )
    ]
    events = stage.sql(
        "SELECT instance, event, state, event_key, payload, forward_pending, forward_next_at FROM whatsapp.events",
        dbname="shop",
    )
    assert events == [("main", "connection.update", "open", event.event_key, CONNECTED, False, None)]
