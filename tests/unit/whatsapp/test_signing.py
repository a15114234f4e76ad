"""Signing forwarded rows: the signature covers timestamp and exact body, verification is strict about both and
about the clock, and the README's snippet for app developers agrees with the product's own verifier."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from nextmavens.whatsapp.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, signed_headers, verify
from tests.support.repo import REPO

SECRET = "s3cret-forwarding-key-of-at-least-32-bytes"
BODY = b'{"type":"message","id":7}'
NOW = 1_764_660_000


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"v1={expected}"
    assert signed_headers(SECRET, NOW, BODY) == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={expected}"}


def test_a_fresh_signature_verifies_with_header_names_in_any_case() -> None:
    headers = {name.lower(): value for name, value in signed_headers(SECRET, NOW, BODY).items()}
    assert verify(SECRET, headers, BODY, now=NOW + 10)
    assert verify(SECRET, signed_headers(SECRET, NOW, BODY), BODY, now=NOW - 10)  # a receiver's clock a bit behind


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b + b" "),  # the body changed by one byte
        lambda h, b: ({**h, TIMESTAMP_HEADER: str(NOW + 1)}, b),  # the timestamp moved: signature no longer covers it
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].replace("v1=", "v0=")}, b),
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][:-1]}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != TIMESTAMP_HEADER}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "-5"}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "١٢٣"}, b),  # digits, but not ASCII ones
    ],
)
def test_anything_changed_or_missing_fails(change) -> None:  # type: ignore[no-untyped-def]
    headers, body = change(signed_headers(SECRET, NOW, BODY), BODY)
    assert not verify(SECRET, headers, body, now=NOW)


def test_another_secret_fails() -> None:
    assert not verify(SECRET + "x", signed_headers(SECRET, NOW, BODY), BODY, now=NOW)


def test_a_timestamp_outside_the_tolerance_fails_either_way() -> None:
    headers = signed_headers(SECRET, NOW, BODY)
    assert verify(SECRET, headers, BODY, now=NOW + 300)
    assert not verify(SECRET, headers, BODY, now=NOW + 301)  # a replay five minutes later
    assert not verify(SECRET, headers, BODY, now=NOW - 301)
    assert verify(SECRET, headers, BODY, now=NOW + 3000, tolerance_s=3600)


def test_the_readme_snippet_verifies_what_the_platform_signs() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(# Verifying a forwarded WhatsApp row.*?)```", text, re.S)
    assert snippet is not None, "the README shows how an app verifies a forwarded row"
    scope: dict[str, object] = {}
    exec(snippet.group(1), scope)  # noqa: S102 - our own README's code
    check = scope["verified"]
    headers = signed_headers(SECRET, NOW, BODY)
    assert check(SECRET, headers, BODY, now=NOW + 1)  # type: ignore[operator]
    assert not check(SECRET, headers, BODY + b" ", now=NOW + 1)  # type: ignore[operator]
    assert not check(SECRET, headers, BODY, now=NOW + 301)  # type: ignore[operator]
