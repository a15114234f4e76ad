"""First-password links for members (`nextmavens members invite`): single use, with an expiry; only the hash of
the link's secret is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from nextmavens.control.store import access, members
from nextmavens.platform.sessions import new_invite_id, new_secret, secret_hash

INVITE_PATH = "/invite/"


class InviteError(ValueError):
    pass


@dataclass(frozen=True)
class Invite:
    id: str
    member: str
    secret: str  # printed once, never stored
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Invite(id={self.id!r}, member={self.member!r})"

    def link(self, base_url: str) -> str:
        return base_url.rstrip("/") + INVITE_PATH + self.secret


def create_invite(conn: psycopg.Connection, member: str, lifetime: timedelta, created_by: str) -> Invite:
    """An invite for `member`, who must be in an org as last applied. Setting a password through it also serves
    as a reset: it replaces the member's password and ends their sessions."""
    member = member.strip().lower()
    if not access.member_roles(conn, member):
        raise InviteError(f"{member} is a member of no org (as last applied: add them to an org.yaml and apply)")
    secret = new_secret()
    invite_id = new_invite_id()
    expires_at = datetime.now(UTC) + lifetime
    with conn.transaction():
        members.insert_invite(conn, invite_id, secret_hash(secret), member, created_by, expires_at)
        access.write_audit(conn, created_by, "members.invite", "ok", detail={"invite": invite_id, "member": member})
    return Invite(invite_id, member, secret, expires_at)
