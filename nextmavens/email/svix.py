"""Checking a Resend webhook's Svix signature. Pure: the clock is passed in.

Svix sends `svix-id`, `svix-timestamp` (seconds) and `svix-signature`: space-separated `v1,<base64>` entries (several
while a secret is rotated), each an HMAC-SHA256 over `<id>.<timestamp>.<raw body>` keyed by the base64 part of the
endpoint's `whsec_` secret. A timestamp more than TOLERANCE_S away from now, either way, is refused (a captured
webhook cannot be replayed later); a replay inside the window is caught by the receiver's svix-id uniqueness.
The reason returned is for the service's log only: it holds no part of the secret or of a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

TOLERANCE_S = 5 * 60
SECRET_PREFIX = "whsec_"
MAX_ID = 256
MAX_SIGNATURE_HEADER = 4096


class SecretError(ValueError):
    pass


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; SecretError when it is not one."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("the webhook signing secret is not whsec_ followed by base64") from None
    if len(key) < 16:
        raise SecretError("the webhook signing secret is shorter than 16 bytes")
    return key


def signature_problem(headers: Mapping[str, str], body: bytes, key: bytes, now: float) -> str | None:
    """None when `body` carries a valid signature by `key` (headers with lowercase names); else why not."""
    msg_id = headers.get("svix-id") or ""
    stamp = headers.get("svix-timestamp") or ""
    signatures = headers.get("svix-signature") or ""
    if not msg_id or not stamp or not signatures:
        return "svix-id, svix-timestamp or svix-signature missing"
    if len(msg_id) > MAX_ID or not msg_id.isprintable() or len(signatures) > MAX_SIGNATURE_HEADER:
        return "malformed headers"
    if not stamp.isdigit() or len(stamp) > 12:
        return "malformed timestamp"
    if abs(now - int(stamp)) > TOLERANCE_S:
        return "timestamp outside the tolerance (stale or replayed)"
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return None
    return "no v1 signature matches"
