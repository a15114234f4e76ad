"""The dashboard's session check, one function: request -> the signed-in member, or None.

The dashboard's pages call it, and so can an nginx `auth_request` endpoint (Studio behind the dashboard's
session). A session counts when its cookie's hash is stored, it is not revoked, it is younger than its absolute
expiry, it was used within the idle limit, its second factor (if any) passed, and its member is still in an org.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request

from nextmavens.control.store import members
from nextmavens.control.store.access import TokenRecord
from nextmavens.control.store.members import SessionRecord
from nextmavens.platform.auth import Caller, client_address, service_of
from nextmavens.platform.authz import ROLE_RANK
from nextmavens.platform.sessions import COOKIE, csrf_token, looks_like_secret, secret_hash

SESSION_NAME = "dashboard session"


@dataclass(frozen=True)
class SessionMember:
    caller: Caller  # what authz.decide and the audit log take, as for an access token
    session: SessionRecord
    csrf: str  # the token every form of this session carries

    @property
    def member(self) -> str:
        return self.session.member

    def __repr__(self) -> str:
        return f"SessionMember(member={self.member!r}, session={self.session.id!r})"


def lookup(request: Request, verified: bool = True) -> SessionMember | None:
    """The session of the request's cookie when live; `verified=False` also takes one whose TOTP code is due."""
    secret = request.cookies.get(COOKIE, "")
    if not looks_like_secret(secret):
        return None
    caller = lookup_hash(request, secret_hash(secret), verified)
    return None if caller is None else SessionMember(caller[0], caller[1], csrf_token(secret))


def lookup_hash(request: Request, stored_hash: str, verified: bool = True) -> tuple[Caller, SessionRecord] | None:
    """The same check by the session's stored hash (Studio's signed cookie carries it, not the secret)."""
    service = service_of(request)
    settings = service.settings
    with service.pool.connection() as conn:
        found = members.session_by_hash(conn, stored_hash, settings.session_touch_s)
    if found is None:
        return None
    session, roles = found
    if (
        session.revoked_at is not None
        or session.expires_at <= session.now
        or session.now - session.last_seen_at > timedelta(seconds=settings.session_idle_s)
        or (verified and not session.verified)
        or not any(role in ROLE_RANK for role in roles.values())
    ):
        return None
    record = TokenRecord(
        id=session.id,
        member=session.member,
        org=None,
        project=None,
        read_only=False,
        name=SESSION_NAME,
        created_by=session.member,
        created_at=session.created_at,
        expires_at=None,  # the session's own limits are checked above; tokens it creates get their full lifetime
        last_used_at=session.last_seen_at,
        revoked_at=None,
    )
    return Caller(record, roles, client_address(request), kind="session"), session


def session_member(request: Request) -> SessionMember | None:
    """The signed-in member of the request (its dashboard session cookie), or None."""
    return lookup(request, verified=True)
