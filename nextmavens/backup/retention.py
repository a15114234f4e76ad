"""Retention: complete backups older than their project's retention_days have their messages deleted and
their records marked 'expired'. The newest complete backup of a target is always kept, however old, so
retention can never leave a project without a restorable backup.

The public Bot API documents that a message can only be deleted within 48 hours of sending unless the bot
holds can_delete_messages in the channel: the bot must be a channel admin with that right. A message that
still cannot be deleted is recorded in cleanup_error; the record is marked expired all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from nextmavens.backup import records
from nextmavens.backup.pipeline import Target, delete_uploaded
from nextmavens.backup.telegram import TelegramClient


@dataclass
class Expired:
    target: str
    backup_id: int
    cleanup_error: str | None


def expired_candidates(conn: psycopg.Connection, target: Target) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM backups WHERE target = %s AND status = 'complete'"
        " AND finished_at < now() - make_interval(days => %s)"
        " AND id <> (SELECT id FROM backups WHERE target = %s AND status = 'complete'"
        "            ORDER BY finished_at DESC, id DESC LIMIT 1)"
        " ORDER BY id",
        (target.key, target.retention_days, target.key),
    ).fetchall()
    return [int(r[0]) for r in rows]


def apply_retention(conn: psycopg.Connection, client: TelegramClient, targets: list[Target]) -> list[Expired]:
    done = []
    for target in targets:
        for backup_id in expired_candidates(conn, target):
            cleanup = delete_uploaded(client, conn, backup_id)
            records.expire(conn, backup_id, cleanup)
            done.append(Expired(target.key, backup_id, cleanup))
    return done
