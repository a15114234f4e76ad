"""Which webhook bodies the receiver takes at all (what row each becomes: tests/unit/whatsapp/test_rows.py)."""

from __future__ import annotations

import json

from nextmavens.platform.hookreceiver import parse_body

UPSERT = {"event": "messages.upsert", "instance": "shop--sales", "data": {"key": {"id": "3EB0ABC"}}}


def test_bodies_the_receiver_refuses() -> None:
    assert parse_body(json.dumps(UPSERT).encode()) is not None
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
