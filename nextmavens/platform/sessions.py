"""Dashboard sessions and invite links as text: the cookie's random secret, its stored hash, the CSRF token bound
to it, and the cookie's attributes. Pure."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE = "nm_session"
PRESIGN_COOKIE = "nm_presign"  # before sign-in: a random value the sign-in form repeats (login CSRF)
SECRET_BYTES = 32
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
INVITE_PATTERN = SECRET_PATTERN


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def new_session_id() -> str:
    return "ses_" + secrets.token_hex(8)


def new_invite_id() -> str:
    return "inv_" + secrets.token_hex(8)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(text: str) -> bool:
    return bool(SECRET_PATTERN.match(text))


def csrf_token(secret: str) -> str:
    """The form token of a session: derived from the cookie's secret, so only who holds the cookie can know it,
    and it changes with every session (a synchronizer token the server need not store)."""
    return hmac.new(secret.encode(), b"nextmavens-dashboard-csrf", hashlib.sha256).hexdigest()


def csrf_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def cookie_header(name: str, value: str, max_age_s: int, secure: bool) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure unless turned off (plain-http tests only)."""
    attributes = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age_s}"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)
