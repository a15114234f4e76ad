"""The inbound mail worker's signature: HMAC-SHA256 over `<timestamp>.<raw body>` with the shared secret, hex, in
`x-nextmavens-signature: t=<timestamp>,v1=<hex>`. Pure: the clock is passed in. The worker
(workers/inbound-email/) signs the same way; a timestamp more than TOLERANCE_S away is refused.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "x-nextmavens-signature"
TOLERANCE_S = 5 * 60
MAX_HEADER = 512


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_problem(header: str | None, body: bytes, secret: str, now: float) -> str | None:
    """None when `header` signs `body` with `secret` within the tolerance; else why not (for the log only)."""
    if not header or len(header) > MAX_HEADER:
        return "no signature"
    parts = dict(item.partition("=")[::2] for item in header.split(","))
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return "malformed signature"
    if abs(now - int(stamp)) > TOLERANCE_S:
        return "timestamp outside the tolerance (stale or replayed)"
    expected = sign(secret, int(stamp), body).rpartition("v1=")[2]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "signature does not match"
    return None
