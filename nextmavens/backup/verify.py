"""`backup verify`: the restore drill.

For each target: a fresh backup whose pg_dump runs in a snapshot exported by a transaction that also
counts and checksums every table (so the figures describe exactly what was dumped, while the live
database keeps changing), then a real restore of that backup from Telegram (download, sha256, decrypt,
pg_restore) into a scratch database, the same figures computed there and compared, and the scratch
database dropped. Each result is recorded in backup_verifications.

The operator's private key never touches the host, so the drill's backup is encrypted to two recipients:
the operator's key and an ephemeral key made for this drill in a private temporary folder and deleted
when the drill ends. age wraps one file key per recipient, so the drill proves the whole chain (dump,
encryption, chunks, upload, download, checksums, decryption, pg_restore), and the operator can restore
the same backup with their own key later; it cannot prove the operator's own stanza, which only their
key can open.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from nextmavens.backup.pipeline import Target, backup_target
from nextmavens.backup.restore import (
    RestoreError,
    drop_database,
    identity_recipient,
    restore_backup,
    scratch_name,
)
from nextmavens.backup.settings import BackupSettings
from nextmavens.backup.stats import compare, table_stats_parallel
from nextmavens.backup.telegram import TelegramClient
from nextmavens.control.db import dsn_for_database
from nextmavens.control.store import backups


@dataclass
class DrillResult:
    target: str
    backup_id: int | None
    ok: bool
    tables: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    backup_seconds: float = 0.0
    drill_seconds: float = 0.0
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds: restore, compare, drop


class EphemeralIdentity:
    """An age identity in a 0700 temporary folder, removed on exit."""

    def __init__(self, work_dir: Path, age_keygen: str = "age-keygen") -> None:
        self.work_dir = work_dir
        self.age_keygen = age_keygen

    def __enter__(self) -> tuple[Path, str]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="nextmavens-drill-key-", dir=self.work_dir))
        self.folder.chmod(0o700)
        path = self.folder / "identity"
        subprocess.run([self.age_keygen, "-o", str(path)], check=True, capture_output=True, timeout=30)
        path.chmod(0o600)
        public = identity_recipient(path, self.age_keygen)
        if public is None:
            raise RuntimeError("age-keygen made an identity whose public key cannot be read")
        return path, public

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def drill(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    target: Target,
    log: Callable[[str], None] = lambda message: None,
) -> DrillResult:
    """Back up `target` with table figures, restore it into a scratch database, compare, drop it."""
    with EphemeralIdentity(settings.work_dir) as (identity, public):
        made = backup_target(
            settings, conn, client, target, kind="verify", with_stats=True, log=log, drill_recipient=public
        )
        result = DrillResult(target.key, made.backup_id, ok=False, backup_seconds=made.seconds)
        if not made.ok:
            result.error = f"backup failed: {made.error}"
        else:
            result = restore_drill(settings, conn, client, made.backup_id, identity, log)
            result.backup_seconds = made.seconds
    backups.record_verification(
        conn,
        result.backup_id,
        target.key,
        result.ok,
        result.tables,
        result.mismatches,
        result.backup_seconds + result.drill_seconds,
        result.error,
    )
    return result


def restore_drill(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    backup_id: int,
    identity: Path,
    log: Callable[[str], None] = lambda message: None,
) -> DrillResult:
    """Restore an existing backup that carries table figures into a scratch database and compare."""
    started = time.monotonic()
    record = backups.get(conn, backup_id)
    assert record is not None
    result = DrillResult(record.target, backup_id, ok=False)
    if not record.table_stats:
        result.error = "this backup carries no table figures to compare against"
        return result
    scratch = scratch_name(record.database, f"verify_{backup_id}")
    try:
        restore_backup(settings, conn, client, record, identity, scratch, log)
        result.phases["restore"] = time.monotonic() - started
        try:
            restored = table_stats_parallel(dsn_for_database(settings.dsn, scratch), workers=2)
            result.phases["compare"] = time.monotonic() - started - result.phases["restore"]
        finally:
            dropping = time.monotonic()
            drop_database(settings, scratch)
            result.phases["drop"] = time.monotonic() - dropping
        result.mismatches = compare(record.table_stats, restored)
        result.tables = len(record.table_stats)
        result.ok = not result.mismatches
        if result.mismatches:
            result.error = f"{len(result.mismatches)} tables differ"
    except (RestoreError, psycopg.Error, OSError) as exc:
        result.error = str(exc)
    result.drill_seconds = time.monotonic() - started
    log(
        f"{record.target}: verify of backup {backup_id}: "
        + ("OK" if result.ok else f"FAILED: {result.error}")
        + f" ({result.tables} tables, {result.drill_seconds:.1f}s)"
    )
    return result
