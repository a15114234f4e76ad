"""Backup records in the control database (tables from migration 0100_backups.sql)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


@dataclass(frozen=True)
class ChunkRecord:
    seq: int
    message_id: int
    file_id: str
    size: int
    sha256: str
    deleted: bool


@dataclass(frozen=True)
class BackupRecord:
    id: int
    target: str
    database: str
    kind: str
    status: str
    recipient: str
    drill_recipient: str | None
    started_at: datetime
    finished_at: datetime | None
    chunk_count: int | None
    total_bytes: int | None
    db_owner: str | None
    table_stats: dict[str, Any] | None
    error: str | None
    cleanup_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "database": self.database,
            "kind": self.kind,
            "status": self.status,
            "good": self.status == "complete",
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "chunks": self.chunk_count,
            "bytes": self.total_bytes,
            "error": self.error,
            "cleanup_error": self.cleanup_error,
        }


_COLUMN_NAMES = (
    "id",
    "target",
    "database",
    "kind",
    "status",
    "recipient",
    "drill_recipient",
    "started_at",
    "finished_at",
    "chunk_count",
    "total_bytes",
    "db_owner",
    "table_stats",
    "error",
    "cleanup_error",
)
_COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in _COLUMN_NAMES)


def _select(tail: str) -> sql.Composed:
    return sql.SQL("SELECT {} FROM backups ").format(_COLUMNS) + sql.SQL(tail)  # type: ignore[arg-type]


def _record(row: dict[str, Any]) -> BackupRecord:
    return BackupRecord(**row)


def start(
    conn: psycopg.Connection,
    target: str,
    database: str,
    kind: str,
    recipient: str,
    pid: int,
    drill_recipient: str | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO backups (target, database, kind, recipient, drill_recipient, pid)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (target, database, kind, recipient, drill_recipient, pid),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_chunk(
    conn: psycopg.Connection,
    backup_id: int,
    seq: int,
    message_id: int,
    file_id: str,
    unique: str,
    size: int,
    sha256: str,
) -> None:
    conn.execute(
        "INSERT INTO backup_chunks (backup_id, seq, message_id, file_id, file_unique_id, size, sha256)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (backup_id, seq, message_id, file_id, unique, size, sha256),
    )


def complete(
    conn: psycopg.Connection,
    backup_id: int,
    chunk_count: int,
    total_bytes: int,
    db_owner: str | None,
    table_stats: dict[str, Any] | None,
) -> None:
    """Mark complete, in one transaction, only if every chunk 0..n-1 is recorded and sizes add up."""
    with conn.transaction():
        row = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(max(seq), -1) FROM backup_chunks"
            " WHERE backup_id = %s AND deleted_at IS NULL",
            (backup_id,),
        ).fetchone()
        assert row is not None
        count, size, last = int(row[0]), int(row[1]), int(row[2])
        if count != chunk_count or size != total_bytes or last != chunk_count - 1:
            raise RuntimeError(
                f"backup {backup_id}: {count} chunks / {size} bytes recorded, expected "
                f"{chunk_count} / {total_bytes}: not marking it complete"
            )
        conn.execute(
            "UPDATE backups SET status = 'complete', finished_at = now(), chunk_count = %s, total_bytes = %s,"
            " db_owner = %s, table_stats = %s WHERE id = %s AND status = 'running'",
            (chunk_count, total_bytes, db_owner, json.dumps(table_stats) if table_stats else None, backup_id),
        )


def fail(conn: psycopg.Connection, backup_id: int, error: str, cleanup_error: str | None) -> None:
    conn.execute(
        "UPDATE backups SET status = 'failed', finished_at = now(), error = %s, cleanup_error = %s WHERE id = %s",
        (error[:2000], cleanup_error, backup_id),
    )


def expire(conn: psycopg.Connection, backup_id: int, cleanup_error: str | None) -> None:
    conn.execute(
        "UPDATE backups SET status = 'expired', expired_at = now(), cleanup_error = %s WHERE id = %s",
        (cleanup_error, backup_id),
    )


def mark_chunk_deleted(conn: psycopg.Connection, backup_id: int, seq: int) -> None:
    conn.execute("UPDATE backup_chunks SET deleted_at = now() WHERE backup_id = %s AND seq = %s", (backup_id, seq))


def chunks(conn: psycopg.Connection, backup_id: int) -> list[ChunkRecord]:
    rows = conn.execute(
        "SELECT seq, message_id, file_id, size, sha256, deleted_at IS NOT NULL FROM backup_chunks"
        " WHERE backup_id = %s ORDER BY seq",
        (backup_id,),
    ).fetchall()
    return [ChunkRecord(int(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]), bool(r[5])) for r in rows]


def get(conn: psycopg.Connection, backup_id: int) -> BackupRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_select("WHERE id = %s"), (backup_id,)).fetchone()
    return _record(row) if row else None


def listing(conn: psycopg.Connection, target: str | None = None) -> list[BackupRecord]:
    with conn.cursor(row_factory=dict_row) as cur:
        if target:
            rows = cur.execute(
                _select("WHERE target = %s ORDER BY started_at DESC, id DESC"),
                (target,),
            ).fetchall()
        else:
            rows = cur.execute(_select("ORDER BY target, started_at DESC, id DESC")).fetchall()
    return [_record(r) for r in rows]


def latest_complete(conn: psycopg.Connection, target: str) -> BackupRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            _select("WHERE target = %s AND status = 'complete' ORDER BY finished_at DESC, id DESC LIMIT 1"),
            (target,),
        ).fetchone()
    return _record(row) if row else None


def last_good_by_target(conn: psycopg.Connection) -> dict[str, datetime]:
    rows = conn.execute(
        "SELECT target, max(finished_at) FROM backups WHERE status = 'complete' GROUP BY target"
    ).fetchall()
    return {str(r[0]): r[1] for r in rows}


def record_verification(
    conn: psycopg.Connection,
    backup_id: int | None,
    target: str,
    ok: bool,
    tables: int,
    mismatches: list[dict[str, Any]],
    seconds: float,
    error: str | None,
) -> int:
    row = conn.execute(
        "INSERT INTO backup_verifications"
        " (backup_id, target, finished_at, ok, tables, mismatches, seconds, error)"
        " VALUES (%s, %s, now(), %s, %s, %s, %s, %s) RETURNING id",
        (backup_id, target, ok, tables, json.dumps(mismatches), seconds, error),
    ).fetchone()
    assert row is not None
    return int(row[0])


def last_verifications(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (target) target, backup_id, finished_at, ok, tables, error"
            " FROM backup_verifications ORDER BY target, started_at DESC"
        ).fetchall()


def running_ids(conn: psycopg.Connection) -> list[int]:
    """Backups still marked running (under the backup lock: left by a run that died)."""
    return [int(r[0]) for r in conn.execute("SELECT id FROM backups WHERE status = 'running'").fetchall()]


def failed_with_live_chunks(conn: psycopg.Connection) -> list[int]:
    """Failed backups some of whose uploaded messages are not recorded as deleted."""
    rows = conn.execute(
        "SELECT DISTINCT b.id FROM backups b JOIN backup_chunks c ON c.backup_id = b.id"
        " WHERE b.status = 'failed' AND c.deleted_at IS NULL"
    ).fetchall()
    return [int(r[0]) for r in rows]


def set_cleanup_error(conn: psycopg.Connection, backup_id: int, cleanup_error: str | None) -> None:
    conn.execute("UPDATE backups SET cleanup_error = %s WHERE id = %s", (cleanup_error, backup_id))


def expired_complete(conn: psycopg.Connection, target: str, retention_days: int) -> list[int]:
    """Complete backups of `target` finished more than `retention_days` ago, except its newest complete one."""
    rows = conn.execute(
        "SELECT id FROM backups WHERE target = %s AND status = 'complete'"
        " AND finished_at < now() - make_interval(days => %s)"
        " AND id <> (SELECT id FROM backups WHERE target = %s AND status = 'complete'"
        "            ORDER BY finished_at DESC, id DESC LIMIT 1)"
        " ORDER BY id",
        (target, retention_days, target),
    ).fetchall()
    return [int(r[0]) for r in rows]
