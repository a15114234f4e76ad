"""Per-project secrets and API keys. Pure: randomness and time are the only inputs.

`ProjectSecrets` is what the engine stores (encrypted) for a project and what renderers of the edge
(PostgREST, GoTrue, Kong, Supavisor, Realtime) take as plain values.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import jwt

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "supabase"  # supabase-js and Supabase's services expect this issuer on legacy keys
DAY_S = 24 * 3600
# How long newly issued API keys stay valid: the one default, overridden by NEXTMAVENS_KEY_LIFETIME_DAYS.
DEFAULT_KEY_LIFETIME_DAYS = 365
MAX_KEY_LIFETIME_DAYS = 3650
KEY_LIFETIME_ENV = "NEXTMAVENS_KEY_LIFETIME_DAYS"
# Keys issued before the expiry was recorded per project were signed for ten years; they keep that expiry
# (a different one would change the keys themselves under every client) until the project's keys are rotated.
LEGACY_KEY_LIFETIME_S = 10 * 365 * DAY_S
EXPIRY_WARNING_DAYS = 30
MIN_JWT_SECRET_BYTES = 32

# Supabase's public demo secret (docker/.env.example): any key signed with it is forged by anyone.
SUPABASE_DEMO_JWT_SECRET = "your-super-secret-jwt-token-with-at-least-32-characters-long"


class ForbiddenKey(ValueError):
    """A key or secret that must never be accepted (too short, or Supabase's public demo one)."""


class KeyLifetimeError(ValueError):
    """NEXTMAVENS_KEY_LIFETIME_DAYS holds something that is not a usable number of days."""


def key_lifetime_days(environ: Mapping[str, str]) -> int:
    """The configured lifetime of newly issued keys, in days (the default when unset)."""
    raw = environ.get(KEY_LIFETIME_ENV, "").strip()
    if not raw:
        return DEFAULT_KEY_LIFETIME_DAYS
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_KEY_LIFETIME_DAYS:
        raise KeyLifetimeError(
            f"{KEY_LIFETIME_ENV} must be a whole number of days from 1 to {MAX_KEY_LIFETIME_DAYS}, got {raw[:20]!r}"
        )
    return int(raw)


@dataclass(frozen=True)
class ApiKeys:
    anon: str
    service_role: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class ProjectSecrets:
    jwt_secret: str
    keys: ApiKeys
    # login role name -> password
    passwords: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"ProjectSecrets(roles={sorted(self.passwords)}, keys_issued_at={self.keys.issued_at})"


def new_password() -> str:
    return secrets.token_urlsafe(32)


def new_jwt_secret() -> str:
    """48 random bytes, URL-safe base64 (64 characters): well above HS256's 32-byte minimum."""
    return secrets.token_urlsafe(48)


def check_jwt_secret(secret: str) -> None:
    if secret == SUPABASE_DEMO_JWT_SECRET:
        raise ForbiddenKey("Supabase's public demo JWT secret must never be used")
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ForbiddenKey(f"a JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes")


def sign_api_key(secret: str, role: str, issued_at: int, expires_at: int) -> str:
    check_jwt_secret(secret)
    claims = {"role": role, "iss": JWT_ISSUER, "iat": issued_at, "exp": expires_at}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def issue_api_keys(secret: str, now: int | None = None, expires_at: int | None = None) -> ApiKeys:
    """Keys are a pure function of (secret, issue time, expiry): the engine stores the two times and
    derives the same keys again whenever it needs them. Without `expires_at`, the default lifetime."""
    issued_at = int(time.time()) if now is None else now
    expiry = issued_at + DEFAULT_KEY_LIFETIME_DAYS * DAY_S if expires_at is None else expires_at
    if expiry <= issued_at:
        raise ValueError("keys must expire after they are issued")
    return ApiKeys(
        anon=sign_api_key(secret, "anon", issued_at, expiry),
        service_role=sign_api_key(secret, "service_role", issued_at, expiry),
        issued_at=issued_at,
        expires_at=expiry,
    )


def expiry_warning(expires_at: int, now: int, within_days: int = EXPIRY_WARNING_DAYS) -> str | None:
    """A warning when keys expired or expire within `within_days`; None otherwise."""
    left = expires_at - now
    if left <= 0:
        return "the API keys have expired: every request with them is refused; rotate them"
    if left <= within_days * DAY_S:
        days = -(-left // DAY_S)  # whole days, rounded up: "within 20 days" holds from issue time on
        when = "within a day" if days == 1 else f"within {days} day(s)"
        return f"the API keys expire {when}: rotate them (nextmavens keys rotate) before clients start failing"
    return None
