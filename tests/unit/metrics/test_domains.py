"""`domains`' judgement and the DNS client's wire format (compression included)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from nextmavens.metrics.dnsquery import Record, decode_answer, encode_query
from nextmavens.metrics.domains import Certificate, domain_report, expected_record, is_apex

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_records_to_create() -> None:
    assert is_apex("shop.test") and not is_apex("www.shop.test")
    assert expected_record("www.shop.test", "shop.api.x.test", "203.0.113.10")["type"] == "CNAME"
    assert expected_record("shop.test", "shop.api.x.test", "203.0.113.10") == {
        "type": "A", "name": "shop.test", "value": "203.0.113.10"}


def test_next_steps() -> None:
    ready = [Record("www.shop.test", "CNAME", "shop.api.x.test"), Record("shop.api.x.test", "A", "203.0.113.10")]
    cert = Certificate(frozenset({"www.shop.test"}), NOW + timedelta(days=80))
    ok = domain_report("www.shop.test", "shop.api.x.test", "203.0.113.10", ready, None, cert, NOW)
    assert ok["next_step"].startswith("nothing to do") and ok["certificate"]["days_left"] == 80
    expired = Certificate(frozenset({"www.shop.test"}), NOW - timedelta(days=2))
    gone = domain_report("www.shop.test", "shop.api.x.test", "203.0.113.10", ready, None, expired, NOW)
    assert gone["next_step"].startswith("the certificate has expired")
    other = Certificate(frozenset({"other.test"}), NOW + timedelta(days=80))
    uncovered = domain_report("www.shop.test", "shop.api.x.test", "203.0.113.10", ready, None, other, NOW)
    assert uncovered["certificate"]["issued"] is False and uncovered["next_step"].startswith("DNS is ready")
    failed = domain_report("www.shop.test", "shop.api.x.test", "203.0.113.10", None, "timed out", None, NOW)
    assert failed["dns_problems"] == ["timed out"] and not failed["dns_ready"]


def test_answers_with_compressed_names() -> None:
    query = encode_query(7, "www.shop.test", 1)
    assert query[:2] == b"\x00\x07" and b"\x03www\x04shop\x04test\x00" in query
    question = query[12:]
    # answer: CNAME www.shop.test -> api.shop.test (pointer into the question), then its A record
    cname_data = b"\x03api" + b"\xc0" + bytes([12 + 4])  # "api" + pointer to "shop.test" in the question
    answer = (
        b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, len(cname_data)) + cname_data
        + b"\xc0\x2b" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([203, 0, 113, 10])
    )
    message = struct.pack(">HHHHHH", 7, 0x8180, 1, 2, 0, 0) + question + answer
    rcode, records = decode_answer(message, 7)
    assert rcode == 0
    assert records == [Record("www.shop.test", "CNAME", "api.shop.test"), Record("api.shop.test", "A", "203.0.113.10")]
