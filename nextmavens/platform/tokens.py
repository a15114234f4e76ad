"""Access tokens as text: making one, its stored hash, recognising one, and token lifetimes. Pure."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

TOKEN_PREFIX = "nmp_"
TOKEN_BYTES = 32  # 256 random bits: a SHA-256 of the text is enough to store (nothing to guess or stretch)
TOKEN_PATTERN = re.compile(r"^nmp_[A-Za-z0-9_-]{43,128}$")
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME_DAYS = 3650
LIFETIME_PATTERN = re.compile(r"^([1-9][0-9]{0,5})([hd])$")


class LifetimeError(ValueError):
    """A token lifetime that is not `<n>d`, `<n>h` or `never`, or longer than the maximum."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def new_token_id() -> str:
    """The public name of a token (listing, revoking): random, and no part of the token itself."""
    return "tok_" + secrets.token_hex(8)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(text: str) -> bool:
    return bool(TOKEN_PATTERN.match(text))


def parse_lifetime(text: str) -> timedelta | None:
    """`30d`, `12h` or `never` (None)."""
    value = text.strip().lower()
    if value == "never":
        return None
    match = LIFETIME_PATTERN.match(value)
    if match is None:
        raise LifetimeError(f"a token lifetime is <days>d, <hours>h or never, got {text[:20]!r}")
    count, unit = int(match[1]), match[2]
    lifetime = timedelta(days=count) if unit == "d" else timedelta(hours=count)
    if lifetime > timedelta(days=MAX_LIFETIME_DAYS):
        raise LifetimeError(f"a token lifetime is at most {MAX_LIFETIME_DAYS} days, got {text[:20]!r}")
    return lifetime
