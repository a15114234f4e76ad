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

from nextmavens.backup.pipeline import Target
from nextmavens.backup.telegram import TelegramClient
from nextmavens.backup.uploads import delete_uploaded
from nextmavens.control.store import backups


@dataclass
class Expired:
    target: str
    backup_id: int
    cleanup_error: str | None


def apply_retention(conn: psycopg.Connection, client: TelegramClient, targets: list[Target]) -> list[Expired]:
    done = []
    for target in targets:
        for backup_id in backups.expired_complete(conn, target.key, target.retention_days):
            cleanup = delete_uploaded(client, conn, backup_id)
            backups.expire(conn, backup_id, cleanup)
            done.append(Expired(target.key, backup_id, cleanup))
    return done
