"""The platform service's tables (0300_platform_access.sql): access tokens and the audit log of calls, with the
reads that join them to the members synced from each org.yaml (orgs.members) and to the applied projects.

Tokens are looked up by the SHA-256 of their text; the text itself never reaches this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

# last_used_at is a hint for the operator, not a log: written at most once a minute per token.
LAST_USED_RESOLUTION = "1 minute"

_TOKEN_FIELDS = (
    "id",
    "member",
    "org",
    "project",
    "read_only",
    "name",
    "created_by",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)
_TOKEN_COLUMNS = sql.SQL(", ").join(sql.Identifier("t", name) for name in _TOKEN_FIELDS)


def _tokens_where(condition: str) -> sql.Composed:
    return sql.SQL("SELECT {} FROM access_tokens t WHERE ").format(_TOKEN_COLUMNS) + sql.SQL(condition)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TokenRecord:
    id: str
    member: str
    org: str | None
    project: str | None
    read_only: bool
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "member": self.member,
            "org": self.org,
            "project": self.project,
            "read_only": self.read_only,
            "name": self.name,
            "created_by": self.created_by,
            "created_at": when(self.created_at),
            "expires_at": when(self.expires_at),
            "last_used_at": when(self.last_used_at),
            "revoked_at": when(self.revoked_at),
        }


@dataclass(frozen=True)
class AppliedProject:
    org: str
    ref: str
    name: str
    state: str
    manifest_path: str | None
    last_applied_at: datetime | None
    last_apply_commit: str | None = None  # the manifest repository's commit it was last applied from


def insert_token(
    conn: psycopg.Connection,
    *,
    token_id: str,
    token_hash: str,
    member: str,
    org: str | None,
    project: str | None,
    read_only: bool,
    name: str,
    created_by: str,
    expires_at: datetime | None,
) -> TokenRecord:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO access_tokens (id, token_hash, member, org, project, read_only, name, created_by, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (token_id, token_hash, member, org, project, read_only, name, created_by, expires_at),
        )
        row = cur.execute(_tokens_where("t.id = %s"), (token_id,)).fetchone()
    assert row is not None
    return TokenRecord(**row)


def token_by_hash(conn: psycopg.Connection, token_hash: str) -> tuple[TokenRecord, dict[str, str], datetime] | None:
    """The token with this hash, its member's current roles (org -> role) and the database's time, in one
    statement; marks it used when it is live (a data-modifying WITH runs whether or not it is read)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL(
                "WITH used AS (UPDATE access_tokens SET last_used_at = now() WHERE token_hash = %(hash)s"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
                " AND (last_used_at IS NULL OR last_used_at < now() - %(resolution)s::interval) RETURNING id)"
                " SELECT {}, now() AS checked_at,"
                " (SELECT coalesce(jsonb_object_agg(o.slug, m->>'role'), jsonb_build_object()) FROM orgs o,"
                " jsonb_array_elements(o.members) m WHERE lower(m->>'email') = t.member) AS roles"
                " FROM access_tokens t WHERE t.token_hash = %(hash)s"
            ).format(_TOKEN_COLUMNS),
            {"hash": token_hash, "resolution": LAST_USED_RESOLUTION},
        ).fetchone()
    if row is None:
        return None
    roles, checked_at = row.pop("roles"), row.pop("checked_at")
    return TokenRecord(**row), {str(k): str(v) for k, v in roles.items()}, checked_at


def token(conn: psycopg.Connection, token_id: str) -> TokenRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_tokens_where("t.id = %s"), (token_id,)).fetchone()
    return TokenRecord(**row) if row else None


def tokens(conn: psycopg.Connection, member: str | None = None, orgs: list[str] | None = None) -> list[TokenRecord]:
    """Every token (both None), or the member's own and those that reach into `orgs`: scoped to one of them,
    or unscoped and held by one of their members."""
    with conn.cursor(row_factory=dict_row) as cur:
        if member is None and orgs is None:
            rows = cur.execute(_tokens_where("true ORDER BY t.created_at, t.id")).fetchall()
        else:
            rows = cur.execute(
                _tokens_where(
                    "t.member = %(member)s OR t.org = ANY(%(orgs)s) OR (t.org IS NULL AND t.member IN"
                    " (SELECT lower(m->>'email') FROM orgs o, jsonb_array_elements(o.members) m"
                    " WHERE o.slug = ANY(%(orgs)s))) ORDER BY t.created_at, t.id"
                ),
                {"member": member, "orgs": orgs or []},
            ).fetchall()
    return [TokenRecord(**r) for r in rows]


def revoke_token(conn: psycopg.Connection, token_id: str) -> datetime | None:
    """Revoke (once; revoking again keeps the first time). The revocation time, None for an unknown id."""
    row = conn.execute(
        "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING revoked_at",
        (token_id,),
    ).fetchone()
    return None if row is None else row[0]


def member_roles(conn: psycopg.Connection, member: str) -> dict[str, str]:
    """org -> role of a member (email, any case) in the orgs as last applied."""
    rows = conn.execute(
        "SELECT o.slug, m->>'role' FROM orgs o, jsonb_array_elements(o.members) m WHERE lower(m->>'email') = %s",
        (member.lower(),),
    )
    return {str(org): str(role) for org, role in rows}


def applied_projects(conn: psycopg.Connection) -> list[AppliedProject]:
    """Projects the engine applied and has not destroyed."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT org, ref, name, state, manifest_path, last_applied_at, last_apply_commit FROM projects"
            " WHERE destroyed_at IS NULL ORDER BY org, ref"
        ).fetchall()
    return [AppliedProject(**r) for r in rows]


def write_audit(
    conn: psycopg.Connection,
    actor: str,
    action: str,
    result: str,
    org: str | None = None,
    project: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, org, project, result, detail) VALUES (%s, %s, %s, %s, %s, %s)",
        (actor, action, org, project, result, json.dumps(detail or {})),
    )


def audit_entries(conn: psycopg.Connection, org: str, limit: int, before: int | None = None) -> list[dict[str, Any]]:
    """The org's audit rows, newest first; `before`: only ids below it (the next page)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, at, actor, action, org, project, result, detail FROM audit_log"
            " WHERE org = %s AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
            (org, before, before, limit),
        ).fetchall()
    return [{**r, "at": r["at"].isoformat()} for r in rows]
