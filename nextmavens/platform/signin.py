"""Members signing in to the dashboard: password, lockout, the TOTP second factor, sessions started and ended,
invite links used, and the password asked again before a secret is shown. Every outcome is an audit row."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nextmavens.control.store import access, members
from nextmavens.platform import passwords, totp
from nextmavens.platform.service import Service
from nextmavens.platform.sessions import new_secret, new_session_id, secret_hash

SIGNIN = "dashboard.signin"
REFUSED = "wrong email, password or code"


class SigninRefused(Exception):
    """A refused sign-in: the message says nothing of which part was wrong; retry_after when rate limited."""

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Started:
    secret: str  # the cookie's value: never stored
    session_id: str
    needs_code: bool

    def __repr__(self) -> str:
        return f"Started(session_id={self.session_id!r}, needs_code={self.needs_code})"


def totp_context(member: str) -> str:
    return f"member-totp/{member}"


def _audit(service: Service, actor: str, action: str, result: str, **detail: object) -> None:
    with service.pool.connection() as conn:
        access.write_audit(conn, actor, action, result, detail=dict(detail))


def _refuse(service: Service, member: str, address: str, reason: str) -> SigninRefused:
    """Count the failure against the address and the account (which may lock), audit it."""
    service.signin_failed(address)
    settings = service.settings
    with service.pool.connection() as conn:
        locked = members.record_failure(conn, member, settings.signin_lock_after, settings.signin_lock_s)
    _audit(service, member, SIGNIN, "failed", reason=reason, client=address, locked=locked is not None)
    return SigninRefused(REFUSED)


def _gate(service: Service, member: str, address: str) -> members.Credentials | None:
    """Refuse before any password check when the address is over its limit or the account is locked."""
    wait = service.signin_retry_after(address)
    if wait:
        _audit(service, member, SIGNIN, "rate_limited", client=address)
        raise SigninRefused("too many failed sign-ins from your address; try again later", wait)
    with service.pool.connection() as conn:
        found = members.credentials(conn, member)
    if found is not None and found.locked_until is not None and found.locked_until > found.now:
        service.signin_failed(address)
        _audit(service, member, SIGNIN, "locked", client=address)
        wait = int((found.locked_until - found.now).total_seconds()) + 1
        raise SigninRefused("this account is locked after too many failed sign-ins; try again later", wait)
    return found


def sign_in(service: Service, email: str, password: str, address: str) -> Started:
    """Check the password; a session starts (unverified while a TOTP code is due)."""
    member = email.strip().lower()[:320]
    found = _gate(service, member, address)
    stored = found.password_hash if found is not None else None
    if not passwords.verify(stored, password):
        raise _refuse(service, member, address, "password")
    with service.pool.connection() as conn:
        if not access.member_roles(conn, member):
            raise _refuse(service, member, address, "not_a_member")
        members.clear_failures(conn, member)
    assert found is not None
    needs_code = found.totp is not None
    secret, session_id = new_secret(), new_session_id()
    with service.pool.connection() as conn:
        members.insert_session(
            conn, session_id, secret_hash(secret), member, not needs_code, address, service.settings.session_max_s
        )
    _audit(service, member, SIGNIN, "code_due" if needs_code else "ok", session=session_id, client=address)
    return Started(secret, session_id, needs_code)


def second_factor(service: Service, session_id: str, member: str, code: str, address: str) -> None:
    """The TOTP code of a session whose password passed: the session is verified, or the failure counted."""
    found = _gate(service, member, address)
    if found is None or found.totp is None:
        raise _refuse(service, member, address, "no_second_factor")
    secret = service.sealer().open(*found.totp, totp_context(member))
    step = totp.matching_step(secret, code, time.time())
    if step is None:
        raise _refuse(service, member, address, "code")
    with service.pool.connection() as conn:
        fresh = members.accept_totp_step(conn, member, step)
    if not fresh:  # a code already used (or older than one used): counted like a wrong one
        raise _refuse(service, member, address, "code_reused")
    with service.pool.connection() as conn:
        members.clear_failures(conn, member)
        members.verify_session(conn, session_id)
    _audit(service, member, SIGNIN, "ok", session=session_id, client=address, second_factor=True)


def confirm_password(service: Service, member: str, password: str, address: str) -> None:
    """The signed-in member's password again (before a secret is shown): counted and locked like a sign-in."""
    found = _gate(service, member, address)
    if not passwords.verify(found.password_hash if found else None, password):
        raise _refuse(service, member, address, "reauthenticate")
    with service.pool.connection() as conn:
        members.clear_failures(conn, member)


def enable_totp(service: Service, member: str, secret: str, code: str) -> bool:
    """Store the member's new TOTP secret (sealed) once they prove their app holds it."""
    step = totp.matching_step(secret, code, time.time())
    if step is None:
        return False
    sealed = service.sealer().seal(secret, totp_context(member))
    with service.pool.connection() as conn:
        members.set_totp(conn, member, sealed, step)  # the code that proved it cannot also sign in
    _audit(service, member, "members.totp", "enabled")
    return True


def disable_totp(service: Service, member: str) -> None:
    with service.pool.connection() as conn:
        members.set_totp(conn, member, None)
    _audit(service, member, "members.totp", "disabled")


def has_totp(service: Service, member: str) -> bool:
    with service.pool.connection() as conn:
        found = members.credentials(conn, member)
    return found is not None and found.totp is not None


def sign_out(service: Service, session_id: str, member: str) -> None:
    with service.pool.connection() as conn:
        members.revoke_session(conn, session_id)
    _audit(service, member, "dashboard.signout", "ok", session=session_id)


def sign_out_everywhere(service: Service, member: str) -> int:
    with service.pool.connection() as conn:
        ended = members.revoke_member_sessions(conn, member)
    _audit(service, member, "dashboard.signout_everywhere", "ok", sessions=ended)
    return ended


def invite_member(service: Service, invite_secret: str) -> tuple[str, str] | None:
    """(invite id, member) of a live invite link."""
    with service.pool.connection() as conn:
        return members.live_invite(conn, secret_hash(invite_secret))


def accept_invite(service: Service, invite_id: str, member: str, password: str, confirm: str) -> None:
    """Set the member's password through a live invite (single use); their other sessions end."""
    chosen = passwords.check_new(password, confirm)
    hashed = passwords.hash_password(chosen)
    with service.pool.connection() as conn, conn.transaction():
        if not members.use_invite(conn, invite_id):
            raise passwords.WeakPassword("this link was used or has expired; ask for a new one")
        members.set_password(conn, member, hashed)
        members.revoke_member_sessions(conn, member)
        access.write_audit(conn, member, "members.set_password", "ok", detail={"invite": invite_id})
