"""What a backup leaves in the channel: its messages' names, their deletion, and the result of one backup.

Below both the pipeline and the master key's backup, which build on these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.control.store import backups


@dataclass
class BackupResult:
    target: str
    backup_id: int
    ok: bool
    chunks: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    cleanup_error: str | None = None


def chunk_name(target: str, backup_id: int, seq: int, when: datetime) -> str:
    slug = target.replace("/", "_").lstrip("_")
    return f"{slug}.{when:%Y%m%dT%H%M%SZ}.b{backup_id}.pgdump.age.part{seq:04d}"


def delete_uploaded(client: TelegramClient, conn: psycopg.Connection, backup_id: int) -> str | None:
    """Delete every not-yet-deleted chunk message of a backup; a summary of what could not be deleted."""
    failures: list[str] = []
    for chunk in backups.chunks(conn, backup_id):
        if chunk.deleted:
            continue
        try:
            client.delete_message(chunk.message_id)
        except TelegramError as exc:
            failures.append(f"part {chunk.seq}: {exc.description}")
            continue
        backups.mark_chunk_deleted(conn, backup_id, chunk.seq)
    return "; ".join(failures)[:2000] if failures else None
