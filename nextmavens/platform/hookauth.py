"""Checking the token Evolution API signs each webhook with. Pure: the clock is passed in.

Evolution sends `Authorization: Bearer <JWT>`, HS256 with the instance's webhook secret (its `jwt_key`), claims
`{iat, exp: iat + 600, app: "evolution", action: "webhook"}`. The token names no instance and no body, so the
caller also checks the body's `instance` against the URL's. Every check answers the same to the sender: the
reason returned here is for the service's log only.
"""

from __future__ import annotations

import jwt

ALGORITHM = "HS256"
LEEWAY_S = 60.0  # clock difference allowed between Evolution's host and this one, both ways
MAX_TOKEN_CHARS = 4096  # Evolution's tokens are ~150 characters: anything far longer is not one of them

# Signature and algorithm only: the claims are checked below against the caller's clock, so the check is pure.
_DECODE_OPTIONS = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def _seconds(value: object) -> float | None:
    """A NumericDate claim (seconds since the epoch), or None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def webhook_token_problem(authorization: str | None, secret: str, now: float, leeway_s: float = LEEWAY_S) -> str | None:
    """None when `authorization` carries a valid webhook token signed with `secret`; else why not (no secret in
    it, nor any part of the token)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "no bearer token"
    if len(token) > MAX_TOKEN_CHARS:
        return "token too long"
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)  # type: ignore[arg-type]
    except jwt.InvalidAlgorithmError:
        return "algorithm not HS256"
    except jwt.InvalidSignatureError:
        return "signature does not match the instance's secret"
    except jwt.PyJWTError:
        return "malformed token"
    if claims.get("app") != "evolution" or claims.get("action") != "webhook":
        return "not an Evolution webhook token (app/action)"
    exp, iat = _seconds(claims.get("exp")), _seconds(claims.get("iat"))
    if exp is None or iat is None:
        return "exp or iat missing"
    if now > exp + leeway_s:
        return "expired"
    if iat > now + leeway_s:
        return "issued in the future"
    return None
