"""The webhook token check: Evolution's HS256 JWT, its claims, the clock with its leeway, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from nextmavens.platform.hookauth import LEEWAY_S, webhook_token_problem

SECRET = "s" * 64
NOW = 1_800_000_000.0
CLAIMS = {"iat": int(NOW), "exp": int(NOW) + 600, "app": "evolution", "action": "webhook"}


def bearer(claims: dict[str, Any] | None = None, secret: str = SECRET, **headers: Any) -> str:
    token = jwt.encode(CLAIMS if claims is None else claims, secret, algorithm="HS256", headers=headers or None)
    return f"Bearer {token}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand: any header, any signature (or none)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key is not None else ""
    return f"Bearer {signing_input}.{signature}"


def test_evolutions_token_is_accepted() -> None:
    assert webhook_token_problem(bearer(), SECRET, NOW) is None
    assert webhook_token_problem(bearer().replace("Bearer", "bearer"), SECRET, NOW) is None


def test_a_token_signed_with_another_secret_is_refused() -> None:
    problem = webhook_token_problem(bearer(secret="t" * 64), SECRET, NOW)
    assert problem == "signature does not match the instance's secret"


def test_a_tampered_claim_breaks_the_signature() -> None:
    header, claims, signature = bearer().removeprefix("Bearer ").split(".")
    forged = b64(json.dumps({**CLAIMS, "exp": int(NOW) + 10**6}).encode())
    assert webhook_token_problem(f"Bearer {header}.{forged}.{signature}", SECRET, NOW) is not None


def test_expired_beyond_the_leeway_is_refused_and_within_it_accepted() -> None:
    exp = CLAIMS["exp"]
    assert webhook_token_problem(bearer(), SECRET, exp + LEEWAY_S - 1) is None
    assert webhook_token_problem(bearer(), SECRET, exp + LEEWAY_S + 1) == "expired"


def test_an_iat_in_the_future_beyond_the_leeway_is_refused() -> None:
    ahead = {**CLAIMS, "iat": int(NOW) + 120, "exp": int(NOW) + 720}
    assert webhook_token_problem(bearer(ahead), SECRET, NOW) == "issued in the future"
    slightly = {**CLAIMS, "iat": int(NOW) + 30, "exp": int(NOW) + 630}
    assert webhook_token_problem(bearer(slightly), SECRET, NOW) is None


@pytest.mark.parametrize(
    "claims",
    [
        {**CLAIMS, "app": "other"},
        {**CLAIMS, "action": "send"},
        {key: value for key, value in CLAIMS.items() if key != "app"},
    ],
)
def test_wrong_app_or_action_is_refused(claims: dict[str, Any]) -> None:
    assert webhook_token_problem(bearer(claims), SECRET, NOW) == "not an Evolution webhook token (app/action)"


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_exp_and_iat_are_required(missing: str) -> None:
    claims = {key: value for key, value in CLAIMS.items() if key != missing}
    assert webhook_token_problem(bearer(claims), SECRET, NOW) == "exp or iat missing"
    assert webhook_token_problem(bearer({**CLAIMS, missing: True}), SECRET, NOW) == "exp or iat missing"


def test_alg_none_is_refused() -> None:
    assert webhook_token_problem(handmade({"alg": "none", "typ": "JWT"}, CLAIMS, None), SECRET, NOW) == (
        "algorithm not HS256"
    )


def test_other_algorithms_are_refused_even_with_a_valid_hmac() -> None:
    hs512 = jwt.encode(CLAIMS, SECRET, algorithm="HS512")
    assert webhook_token_problem(f"Bearer {hs512}", SECRET, NOW) == "algorithm not HS256"
    # A header that lies about the algorithm over an HS256 signature
    assert webhook_token_problem(handmade({"alg": "RS256"}, CLAIMS, SECRET.encode()), SECRET, NOW) == (
        "algorithm not HS256"
    )


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Token " + bearer().split()[1], "Bearer not.a.jwt", "Bearer x"],
)
def test_missing_or_malformed_is_refused(authorization: str | None) -> None:
    assert webhook_token_problem(authorization, SECRET, NOW) is not None


def test_an_overlong_token_is_refused_before_decoding() -> None:
    assert webhook_token_problem("Bearer " + "a" * 5000, SECRET, NOW) == "token too long"


def test_the_reason_never_holds_the_token_or_the_secret() -> None:
    token = bearer(secret="t" * 64)
    reason = webhook_token_problem(token, SECRET, NOW) or ""
    assert token.split()[1] not in reason and SECRET not in reason
