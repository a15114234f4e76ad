"""Issuing and revoking access tokens, with their audit rows: shared by `nextmavens token` and `/v1/tokens`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from nextmavens.control.store import access, projects
from nextmavens.control.store.access import TokenRecord
from nextmavens.platform.tokens import new_token, new_token_id, token_hash

MAX_NAME_CHARS = 100


class IssueError(ValueError):
    """The member, org or project a token would be for is not (or no longer) there."""


@dataclass(frozen=True)
class Issued:
    record: TokenRecord
    token: str  # shown once, never stored

    def __repr__(self) -> str:  # the token never reaches a log through repr()
        return f"Issued(id={self.record.id!r})"


def issue_token(
    conn: psycopg.Connection,
    *,
    member: str,
    org: str | None,
    project: str | None,
    read_only: bool,
    name: str,
    expires_at: datetime | None,
    created_by: str,
) -> Issued:
    """A new token for `member`, who must be in `org` (or in some org, for a token over all of theirs) as last
    applied; `project` must be an applied project of `org`."""
    member = member.strip().lower()
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise IssueError(f"a token name is at most {MAX_NAME_CHARS} printable characters")
    roles = access.member_roles(conn, member)
    if org is None and project is not None:
        raise IssueError("a project token names its org")
    if org is None and not roles:
        raise IssueError(f"{member} is a member of no org (as last applied: add them to an org.yaml and apply)")
    if org is not None and org not in roles:
        raise IssueError(f"{member} is not a member of org {org!r} (as last applied)")
    if org is not None and project is not None and projects.project_org(conn, project) != org:
        raise IssueError(f"no applied project {org}/{project}")
    token = new_token()
    with conn.transaction():
        record = access.insert_token(
            conn,
            token_id=new_token_id(),
            token_hash=token_hash(token),
            member=member,
            org=org,
            project=project,
            read_only=read_only,
            name=name,
            created_by=created_by,
            expires_at=expires_at,
        )
        access.write_audit(
            conn,
            created_by,
            "tokens.create",
            "ok",
            org,
            project,
            {"token": record.id, "member": member, "read_only": read_only},
        )
    return Issued(record, token)


def revoke(conn: psycopg.Connection, record: TokenRecord, actor: str) -> datetime:
    with conn.transaction():
        revoked_at = access.revoke_token(conn, record.id)
        assert revoked_at is not None
        access.write_audit(
            conn,
            actor,
            "tokens.revoke",
            "ok",
            record.org,
            record.project,
            {"token": record.id, "member": record.member},
        )
    return revoked_at
