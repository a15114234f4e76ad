"""A platform file backed up as one age-encrypted chunk (the master key, the manifest repository's bundle), and
its way back: each backup is a row in `backups` with one chunk, named like a dump's but with its own suffix. The
plain bytes reach age through a pipe and are never written, uploaded or logged."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from nextmavens.backup.restore import (
    RestoreError,
    WrongKeyError,
    check_identity,
    choose_backup,
    chunk_records,
    decrypt_argv,
    download_verified,
)
from nextmavens.backup.settings import BackupSettings
from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.backup.uploads import BackupResult, chunk_name, delete_uploaded
from nextmavens.control.store import backups
from nextmavens.files import write_atomic


def backup_artifact(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    *,
    key: str,
    source: str,
    read: Callable[[], bytes],
    suffix: str,
    label: str,
    errors: tuple[type[Exception], ...] = (),
    kind: str = "scheduled",
    log: Callable[[str], None] = lambda message: None,
) -> BackupResult:
    """Upload `read()` encrypted to the operator's recipient as backup target `key`. A failure (including one of
    `errors` from `read`) is recorded on the backup and returned, its uploaded chunk deleted."""
    caught: tuple[type[Exception], ...] = (
        *errors,
        RestoreError,
        TelegramError,
        OSError,
        subprocess.TimeoutExpired,
        RuntimeError,
    )
    started = time.monotonic()
    backup_id = backups.start(conn, key, source, kind, settings.recipient, os.getpid())
    result = BackupResult(target=key, backup_id=backup_id, ok=False)
    try:
        encrypted = subprocess.run(
            [settings.age_bin, "--encrypt", "--recipient", settings.recipient],
            input=read(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if encrypted.returncode != 0:
            raise RestoreError(f"age exited {encrypted.returncode}: {encrypted.stderr.decode(errors='replace')[-300:]}")
        data = encrypted.stdout
        digest = hashlib.sha256(data).hexdigest()
        name = chunk_name(key, backup_id, 0, datetime.now(UTC)).replace(".pgdump.", f".{suffix}.")
        document = client.send_document(data, name, f"nextmavens {label} {backup_id} sha256={digest}")
        backups.add_chunk(
            conn, backup_id, 0, document.message_id, document.file_id, document.file_unique_id, len(data), digest
        )
        backups.complete(conn, backup_id, 1, len(data), None, None)
    except caught as exc:
        result.error = f"{label} backup failed: {exc}"
        result.cleanup_error = delete_uploaded(client, conn, backup_id)
        backups.fail(conn, backup_id, result.error, result.cleanup_error)
        log(f"{key}: backup {backup_id} FAILED: {result.error}")
        return result
    result.ok, result.chunks, result.bytes = True, 1, len(data)
    result.seconds = time.monotonic() - started
    log(f"{key}: backup {backup_id} complete (age-encrypted, {len(data)} bytes)")
    return result


def recover_artifact(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    key: str,
    identity: Path,
    out: Path,
    *,
    mode: int,
    check: Callable[[int, bytes], None],
    backup_id: int | None = None,
) -> int:
    """Write the decrypted backup (the newest complete one of `key` unless `backup_id`) to `out` with `mode`, created,
    never over an existing file, once its chunk's sha256 matched and `check(backup id, bytes)` accepted it. Returns
    the backup id used."""
    if out.exists():
        raise RestoreError(f"{out} already exists: it is never overwritten")
    used, data = _decrypted(settings, conn, client, key, identity, backup_id)
    check(used, data)
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        write_atomic(out, data, mode, exclusive=True)  # never half-written, never over a file
    except FileExistsError:
        raise RestoreError(f"{out} already exists: it is never overwritten") from None
    return used


def _decrypted(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    key: str,
    identity: Path,
    backup_id: int | None,
) -> tuple[int, bytes]:
    record = choose_backup(conn, key, backup_id)
    check_identity(record, identity)
    chunks = chunk_records(conn, record)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"nextmavens-artifact-{record.id}-", dir=settings.work_dir))
    folder.chmod(0o700)
    try:
        [part] = list(download_verified(client, record, chunks, folder))
        decrypted = subprocess.run(
            decrypt_argv(settings, identity), input=part.read_bytes(), capture_output=True, timeout=120, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if decrypted.returncode != 0:
        message = decrypted.stderr.decode(errors="replace").strip()[-300:]
        if "no identity matched" in message:
            raise WrongKeyError(f"decryption failed: the identity does not match this backup ({message})")
        raise RestoreError(f"decryption failed: age exited {decrypted.returncode}: {message}")
    return record.id, decrypted.stdout
