"""API key lifetimes: the setting, the keys it produces, the warning before they expire."""

from __future__ import annotations

import jwt
import pytest

from nextmavens.keys import (
    DAY_S,
    DEFAULT_KEY_LIFETIME_DAYS,
    KeyLifetimeError,
    expiry_warning,
    issue_api_keys,
    key_lifetime_days,
)
from tests.support.keys import verify_api_key

SECRET = "a-test-jwt-secret-that-is-long-enough-0123456789"
NOW = 1_800_000_000


def test_the_lifetime_defaults_in_one_place_and_is_settable() -> None:
    assert key_lifetime_days({}) == DEFAULT_KEY_LIFETIME_DAYS
    assert key_lifetime_days({"NEXTMAVENS_KEY_LIFETIME_DAYS": " 90 "}) == 90
    assert key_lifetime_days({"NEXTMAVENS_KEY_LIFETIME_DAYS": ""}) == DEFAULT_KEY_LIFETIME_DAYS


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "1.5", "3651", "٣٠", "1e3"])
def test_a_lifetime_that_is_not_a_whole_number_of_days_in_range_is_refused(raw: str) -> None:
    with pytest.raises(KeyLifetimeError, match="NEXTMAVENS_KEY_LIFETIME_DAYS must be a whole number of days"):
        key_lifetime_days({"NEXTMAVENS_KEY_LIFETIME_DAYS": raw})


def test_keys_carry_their_expiry_and_are_a_function_of_secret_issue_time_and_expiry() -> None:
    keys = issue_api_keys(SECRET, now=NOW, expires_at=NOW + 30 * DAY_S)
    assert keys.expires_at == NOW + 30 * DAY_S
    for token in (keys.anon, keys.service_role):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (claims["iat"], claims["exp"]) == (NOW, NOW + 30 * DAY_S)
    assert issue_api_keys(SECRET, now=NOW, expires_at=NOW + 30 * DAY_S) == keys
    assert issue_api_keys(SECRET, now=NOW, expires_at=NOW + 31 * DAY_S).anon != keys.anon
    assert issue_api_keys(SECRET, now=NOW).expires_at == NOW + DEFAULT_KEY_LIFETIME_DAYS * DAY_S
    with pytest.raises(ValueError, match="expire after"):
        issue_api_keys(SECRET, now=NOW, expires_at=NOW)


def test_an_expired_key_is_refused() -> None:
    past = 1_600_000_000  # September 2020
    keys = issue_api_keys(SECRET, now=past, expires_at=past + DAY_S)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_api_key(keys.anon, SECRET)


def test_keys_show_warns_within_thirty_days() -> None:
    assert expiry_warning(NOW + 31 * DAY_S, NOW) is None
    assert "within 30 day(s)" in (expiry_warning(NOW + 30 * DAY_S, NOW) or "")
    assert "within 30 day(s)" in (expiry_warning(NOW + 30 * DAY_S - 1, NOW) or "")
    assert "within 2 day(s)" in (expiry_warning(NOW + DAY_S + 1, NOW) or "")
    assert "within a day" in (expiry_warning(NOW + 3600, NOW) or "")
    assert "have expired" in (expiry_warning(NOW, NOW) or "")
