"""Reading the API keys the engine issues back, as Kong and the services check them."""

from __future__ import annotations

import jwt

from nextmavens.keys import JWT_ALGORITHM, check_jwt_secret


def verify_api_key(token: str, secret: str) -> dict[str, object]:
    """Claims of a key signed by `secret`; raises jwt.InvalidTokenError otherwise (ForbiddenKey for a secret
    the engine refuses to sign with)."""
    check_jwt_secret(secret)
    return jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["role", "iat", "exp"]})
