"""Members' passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended set), and the rule a
new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_CHARS = 12
MAX_CHARS = 256  # hashing cost is per byte of input too: a bound, so a sign-in cannot be made arbitrarily slow

_hasher = PasswordHasher()
# Hashed when the member has no password: a sign-in for an unknown email takes as long as one for a known one.
_DUMMY = _hasher.hash("no-such-member-password")


class WeakPassword(ValueError):
    pass


def check_new(password: str, confirm: str) -> str:
    if password != confirm:
        raise WeakPassword("the two passwords differ")
    if len(password) < MIN_CHARS:
        raise WeakPassword(f"a password has at least {MIN_CHARS} characters")
    if len(password) > MAX_CHARS:
        raise WeakPassword(f"a password has at most {MAX_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no password set; checked against a dummy hash all the same)."""
    if len(password) > MAX_CHARS:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
