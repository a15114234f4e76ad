"""Token text, its stored hash and token lifetimes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nextmavens.platform.tokens import (
    LifetimeError,
    looks_like_token,
    new_token,
    new_token_id,
    parse_lifetime,
    token_hash,
)


def test_a_token_is_the_prefix_and_at_least_32_random_url_safe_bytes() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("nmp_") and looks_like_token(token)
        body = token.removeprefix("nmp_")
        assert len(body) >= 43  # 32 bytes in URL-safe base64
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def test_the_hash_is_sha256_hex_and_differs_from_the_token() -> None:
    token = new_token()
    digest = token_hash(token)
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert digest == token_hash(token) and digest != token_hash(new_token())
    assert token not in digest


@pytest.mark.parametrize(
    "text", ["", "nmp_", "nmp_short", "Bearer nmp_" + "a" * 43, "xyz_" + "a" * 43, "nmp_" + "a" * 42]
)
def test_anything_else_does_not_look_like_a_token(text: str) -> None:
    assert not looks_like_token(text)


def test_token_ids_are_not_the_token() -> None:
    assert new_token_id().startswith("tok_") and new_token_id() != new_token_id()


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), (" 1D ", timedelta(days=1)), ("never", None)],
)
def test_lifetimes(text: str, lifetime: timedelta | None) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["", "0d", "30", "30m", "-1d", "3651d", "1.5d", "forever"])
def test_bad_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(LifetimeError):
        parse_lifetime(text)
