"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP: HMAC-SHA1, 6 digits, 30 s steps). Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

STEP_S = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation


def new_secret() -> str:
    """A random secret as authenticator apps take it: base32 without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def hotp(secret: str, counter: int) -> str:
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def code_at(secret: str, unix_time: float) -> str:
    return hotp(secret, int(unix_time // STEP_S))


def matching_step(secret: str, code: str, unix_time: float, window: int = 1) -> int | None:
    """The time step `code` belongs to: the step of `unix_time`, or `window` steps either side (clocks drift); None
    when it matches none. The caller refuses a step it accepted before (a code is good once)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    step = int(unix_time // STEP_S)
    found = None
    for delta in range(-window, window + 1):  # every candidate compared: the time taken says nothing of which
        if hmac.compare_digest(hotp(secret, step + delta), code) and found is None:
            found = step + delta
    return found


def valid(secret: str, code: str, unix_time: float, window: int = 1) -> bool:
    return matching_step(secret, code, unix_time, window) is not None


def provisioning_uri(secret: str, account: str, issuer: str = "NextMavens") -> str:
    """The otpauth:// URI an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"
