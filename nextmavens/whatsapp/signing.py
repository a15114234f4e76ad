"""Signing the WhatsApp rows the platform forwards to a project's app, and checking such a signature. Pure.

The signature covers the timestamp and the exact bytes posted: `v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, sent
as `X-NextMavens-Signature`, with `X-NextMavens-Timestamp: <t>` (unix seconds). A receiver recomputes it over the
raw body it read (before any JSON parsing), compares in constant time and refuses an old timestamp, so a captured
request cannot be replayed later. The `v1=` prefix lets a later scheme be added beside this one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-NextMavens-Timestamp"
SIGNATURE_HEADER = "X-NextMavens-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300  # how far a receiver accepts the timestamp from its own clock, either way


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>` for `body` posted at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when `headers` (names in any case) carry a v1 signature of `body` by `secret`, stamped within
    `tolerance_s` of `now`. Any missing, malformed, stale or wrong value is False."""
    lowered = {name.lower(): value for name, value in headers.items()}
    stamp, given = lowered.get(TIMESTAMP_HEADER.lower()), lowered.get(SIGNATURE_HEADER.lower())
    if stamp is None or given is None or not stamp.isascii() or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode())
