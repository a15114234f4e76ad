"""The dashboard's pure parts: TOTP against RFC 6238's test vectors, session cookies and CSRF tokens, passwords,
and the redirect target that never leaves the site."""

from __future__ import annotations

import base64

import pytest

from nextmavens.platform import passwords, sessions, totp
from nextmavens.platform.dashboard.web import local_path

# RFC 6238 appendix B: the SHA-1 secret is the ASCII "12345678901234567890"; 8-digit codes, whose last 6 digits
# are the 6-digit code (the truncation is the same, modulo 10**6).
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924")]


@pytest.mark.parametrize(("unix_time", "eight_digits"), RFC_VECTORS)
def test_totp_matches_rfc_6238(unix_time: int, eight_digits: str) -> None:
    assert totp.code_at(RFC_SECRET, unix_time) == eight_digits[-6:]
    assert totp.valid(RFC_SECRET, eight_digits[-6:], unix_time + 25)  # the next step, within the window
    assert not totp.valid(RFC_SECRET, eight_digits[-6:], unix_time + 95)


def test_totp_refuses_malformed_codes_and_makes_uris() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and not totp.valid(secret, "12345", 0) and not totp.valid(secret, "abcdef", 0)
    uri = totp.provisioning_uri(secret, "ana@acme.test")
    assert uri.startswith("otpauth://totp/NextMavens%3Aana%40acme.test?secret=") and "period=30" in uri


def test_session_secrets_hashes_and_csrf_tokens() -> None:
    one, two = sessions.new_secret(), sessions.new_secret()
    assert one != two and sessions.looks_like_secret(one) and not sessions.looks_like_secret(one + "!")
    assert sessions.secret_hash(one) != one and len(sessions.secret_hash(one)) == 64
    assert sessions.csrf_token(one) != sessions.csrf_token(two)
    assert sessions.csrf_matches(sessions.csrf_token(one), sessions.csrf_token(one))
    assert not sessions.csrf_matches(sessions.csrf_token(one), None)
    assert not sessions.csrf_matches(sessions.csrf_token(one), sessions.csrf_token(two))


def test_cookie_attributes() -> None:
    header = sessions.cookie_header("nm_session", "abc", 60, secure=True)
    assert header == "nm_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
    assert "Secure" not in sessions.cookie_header("nm_session", "abc", 60, secure=False)


def test_passwords_are_argon2id_and_checked() -> None:
    stored = passwords.hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "a long enough password") and not passwords.verify(stored, "another one")
    assert not passwords.verify(None, "a long enough password") and not passwords.verify(stored, "x" * 300)
    with pytest.raises(passwords.WeakPassword, match="at least 12"):
        passwords.check_new("short", "short")
    with pytest.raises(passwords.WeakPassword, match="differ"):
        passwords.check_new("a long enough password", "a long enough passwort")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/orgs/acme", "/orgs/acme"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("orgs", "/"),
    ],
)
def test_redirects_stay_on_the_site(given: str, kept: str) -> None:
    assert local_path(given) == kept


def test_totp_names_the_step_a_code_belongs_to_so_a_used_one_can_be_refused() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = int(now // totp.STEP_S)
    assert totp.matching_step(secret, totp.hotp(secret, step), now) == step
    assert totp.matching_step(secret, totp.hotp(secret, step - 1), now) == step - 1  # the window, either side
    assert totp.matching_step(secret, totp.hotp(secret, step + 1), now) == step + 1
    assert totp.matching_step(secret, totp.hotp(secret, step + 2), now) in (None, step - 1, step, step + 1)
    assert totp.matching_step(secret, "12345", now) is None
