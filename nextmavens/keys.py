"""Per-project secrets and API keys. Pure: randomness and time are the only inputs.

`ProjectSecrets` is what the engine stores (encrypted) for a project and what renderers of the edge
(PostgREST, GoTrue, Kong, Supavisor, Realtime) take as plain values.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import jwt

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "supabase"  # supabase-js and Supabase's services expect this issuer on legacy keys
API_KEY_LIFETIME_S = 10 * 365 * 24 * 3600
MIN_JWT_SECRET_BYTES = 32

# Supabase's public demo secret (docker/.env.example): any key signed with it is forged by anyone.
SUPABASE_DEMO_JWT_SECRET = "your-super-secret-jwt-token-with-at-least-32-characters-long"


class ForbiddenKey(ValueError):
    """A key or secret that must never be accepted (too short, or Supabase's public demo one)."""


@dataclass(frozen=True)
class ApiKeys:
    anon: str
    service_role: str
    issued_at: int


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


def sign_api_key(secret: str, role: str, issued_at: int) -> str:
    check_jwt_secret(secret)
    claims = {"role": role, "iss": JWT_ISSUER, "iat": issued_at, "exp": issued_at + API_KEY_LIFETIME_S}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def issue_api_keys(secret: str, now: int | None = None) -> ApiKeys:
    issued_at = int(time.time()) if now is None else now
    return ApiKeys(
        anon=sign_api_key(secret, "anon", issued_at),
        service_role=sign_api_key(secret, "service_role", issued_at),
        issued_at=issued_at,
    )


def verify_api_key(token: str, secret: str) -> dict[str, object]:
    """Claims of a key signed by `secret`; raises jwt.InvalidTokenError otherwise."""
    check_jwt_secret(secret)
    return jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["role", "iat", "exp"]})
