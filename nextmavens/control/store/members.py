"""The dashboard's tables (0600_dashboard.sql): members' credentials, invite links and sign-in sessions.

Invite links and session cookies arrive here as the SHA-256 of their text; the text never reaches this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

Sealed = tuple[bytes, bytes]  # (nonce, ciphertext)


@dataclass(frozen=True)
class Credentials:
    member: str
    password_hash: str | None
    totp: Sealed | None
    failed_signins: int
    locked_until: datetime | None
    now: datetime  # the database's time when read


@dataclass(frozen=True)
class SessionRecord:
    id: str
    member: str
    verified: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    now: datetime


def credentials(conn: psycopg.Connection, member: str) -> Credentials | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT member, password_hash, totp_nonce, totp_ciphertext, failed_signins, locked_until, now() AS now"
            " FROM member_credentials WHERE member = %s",
            (member,),
        ).fetchone()
    if row is None:
        return None
    nonce, ciphertext = row.pop("totp_nonce"), row.pop("totp_ciphertext")
    totp = None if nonce is None else (bytes(nonce), bytes(ciphertext))
    return Credentials(totp=totp, **row)


def record_failure(conn: psycopg.Connection, member: str, lock_after: int, lock_s: float) -> datetime | None:
    """One more failed sign-in of a member with credentials; at `lock_after` failures in a row the account locks
    for `lock_s` seconds (and the count starts again). The lock's end, or None."""
    row = conn.execute(
        "UPDATE member_credentials SET failed_signins = failed_signins + 1, updated_at = now() WHERE member = %s"
        " RETURNING failed_signins",
        (member,),
    ).fetchone()
    if row is None:  # no credentials: nothing to lock (the address's limit still counts)
        return None
    if int(row[0]) < lock_after:
        return None
    locked = conn.execute(
        "UPDATE member_credentials SET failed_signins = 0, locked_until = now() + make_interval(secs => %s)"
        " WHERE member = %s RETURNING locked_until",
        (lock_s, member),
    ).fetchone()
    assert locked is not None
    result: datetime = locked[0]
    return result


def clear_failures(conn: psycopg.Connection, member: str) -> None:
    conn.execute(
        "UPDATE member_credentials SET failed_signins = 0, locked_until = NULL WHERE member = %s"
        " AND (failed_signins <> 0 OR locked_until IS NOT NULL)",
        (member,),
    )


def set_password(conn: psycopg.Connection, member: str, password_hash: str) -> None:
    conn.execute(
        "INSERT INTO member_credentials (member, password_hash) VALUES (%(m)s, %(h)s) ON CONFLICT (member) DO UPDATE"
        " SET password_hash = excluded.password_hash, failed_signins = 0, locked_until = NULL, updated_at = now()",
        {"m": member, "h": password_hash},
    )


def set_totp(conn: psycopg.Connection, member: str, sealed: Sealed | None, step: int | None = None) -> None:
    """The member's sealed TOTP secret (None: off) and the step of the code that proved it (used: never again)."""
    nonce, ciphertext = sealed if sealed is not None else (None, None)
    conn.execute(
        "UPDATE member_credentials SET totp_nonce = %s, totp_ciphertext = %s, totp_last_step = %s, updated_at = now()"
        " WHERE member = %s",
        (nonce, ciphertext, step, member),
    )


def accept_totp_step(conn: psycopg.Connection, member: str, step: int) -> bool:
    """Record `step` as the member's last accepted TOTP step; False when it, or a later one, was accepted before (a
    code reused within its window, or an older one). One statement, so two uses of one code at once accept one."""
    row = conn.execute(
        "UPDATE member_credentials SET totp_last_step = %(s)s WHERE member = %(m)s"
        " AND (totp_last_step IS NULL OR totp_last_step < %(s)s) RETURNING 1",
        {"s": step, "m": member},
    ).fetchone()
    return row is not None


def insert_invite(
    conn: psycopg.Connection, invite_id: str, token_hash: str, member: str, created_by: str, expires_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO member_invites (id, token_hash, member, created_by, expires_at) VALUES (%s, %s, %s, %s, %s)",
        (invite_id, token_hash, member, created_by, expires_at),
    )


def live_invite(conn: psycopg.Connection, token_hash: str) -> tuple[str, str] | None:
    """(invite id, member) of an unused, unexpired invite."""
    row = conn.execute(
        "SELECT id, member FROM member_invites WHERE token_hash = %s AND used_at IS NULL AND expires_at > now()",
        (token_hash,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def use_invite(conn: psycopg.Connection, invite_id: str) -> bool:
    """Mark used; False when it was used (or expired) meanwhile: single use even under a race."""
    row = conn.execute(
        "UPDATE member_invites SET used_at = now() WHERE id = %s AND used_at IS NULL AND expires_at > now()"
        " RETURNING id",
        (invite_id,),
    ).fetchone()
    return row is not None


def insert_session(
    conn: psycopg.Connection,
    session_id: str,
    secret_hash: str,
    member: str,
    verified: bool,
    address: str,
    lifetime_s: float,
) -> None:
    conn.execute(
        "INSERT INTO dashboard_sessions (id, secret_hash, member, verified, address, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
        (session_id, secret_hash, member, verified, address, lifetime_s),
    )


def session_by_hash(
    conn: psycopg.Connection, secret_hash: str, touch_after_s: float
) -> tuple[SessionRecord, dict[str, str]] | None:
    """The session with this hash and its member's current roles (org -> role) in one statement; last_seen_at is
    moved on when it is older than `touch_after_s` and the session is live (the idle limit's clock)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "WITH seen AS (UPDATE dashboard_sessions SET last_seen_at = now() WHERE secret_hash = %(h)s"
            " AND revoked_at IS NULL AND expires_at > now() AND last_seen_at < now() - make_interval(secs => %(t)s)"
            " RETURNING id)"
            " SELECT s.id, s.member, s.verified, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at,"
            " now() AS now,"
            " (SELECT coalesce(jsonb_object_agg(o.slug, m->>'role'), jsonb_build_object()) FROM orgs o,"
            " jsonb_array_elements(o.members) m WHERE lower(m->>'email') = s.member) AS roles"
            " FROM dashboard_sessions s WHERE s.secret_hash = %(h)s",
            {"h": secret_hash, "t": touch_after_s},
        ).fetchone()
    if row is None:
        return None
    roles = row.pop("roles")
    return SessionRecord(**row), {str(k): str(v) for k, v in roles.items()}


def verify_session(conn: psycopg.Connection, session_id: str) -> None:
    conn.execute("UPDATE dashboard_sessions SET verified = true WHERE id = %s", (session_id,))


def revoke_session(conn: psycopg.Connection, session_id: str) -> None:
    conn.execute(
        "UPDATE dashboard_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (session_id,)
    )


def revoke_member_sessions(conn: psycopg.Connection, member: str) -> int:
    """Sign out everywhere: every live session of the member; how many."""
    cur = conn.execute(
        "UPDATE dashboard_sessions SET revoked_at = now() WHERE member = %s AND revoked_at IS NULL", (member,)
    )
    return cur.rowcount
