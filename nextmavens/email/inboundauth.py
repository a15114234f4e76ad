"""The inbound mail worker's signature: HMAC-SHA256 over `<timestamp>.<raw body>` with the shared secret, hex, in
`x-nextmavens-signature: t=<timestamp>,v1=<hex>`. Pure: the clock is passed in. The worker
(workers/inbound-email/) signs the same way; a timestamp more than TOLERANCE_S away is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "x-nextmavens-signature"
TOLERANCE_S = 5 * 60
MAX_HEADER = 512


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _parts(header: str | None) -> tuple[str, str]:
    parts = dict(item.partition("=")[::2] for item in (header or "").split(","))
    return parts.get("t", ""), parts.get("v1", "")


def header_problem(header: str | None, now: float) -> str | None:
    """Why `header` cannot sign any body (missing, malformed, stale), or None: checked before the body is read."""
    if not header or len(header) > MAX_HEADER:
        return "no signature"
    stamp, given = _parts(header)
    if not stamp.isdigit() or len(stamp) > 12 or not re.fullmatch(r"[0-9a-f]{64}", given):
        return "malformed signature"
    if abs(now - int(stamp)) > TOLERANCE_S:
        return "timestamp outside the tolerance (stale or replayed)"
    return None


def signature_problem(header: str | None, body: bytes, secret: str, now: float) -> str | None:
    """None when `header` signs `body` with `secret` within the tolerance; else why not (for the log only)."""
    problem = header_problem(header, now)
    if problem is not None:
        return problem
    stamp, given = _parts(header)
    expected = sign(secret, int(stamp), body).rpartition("v1=")[2]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "signature does not match"
    return None
