"""The master key's own backup: the control database's backups are useless without it.

Every run that backs up the control database first uploads the master key, encrypted with age to the
operator's recipient, as a one-chunk backup of target `_platform/master-key` (file
`platform_master-key.<time>.b<id>.key.age`). Made first, so the control database's dump of the same
run already records it. The key is read by the engine's own reader (mode 0600, 32 bytes) and reaches age
through a pipe: it is never written, uploaded or logged in plain text. `backup recover-key` downloads the
newest one, checks its sha256, decrypts it with the operator's identity and writes it 0600, never over
an existing file.
"""

from __future__ import annotations

import base64
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
from nextmavens.backup.settings import MASTER_KEY_KEY, BackupSettings
from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.backup.uploads import BackupResult, chunk_name, delete_uploaded
from nextmavens.control.crypto import KEY_BYTES, MasterKeyError, load_master_key
from nextmavens.control.store import backups
from nextmavens.control.store import secrets as sealed_secrets
from nextmavens.files import write_atomic


def backup_master_key(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    kind: str = "scheduled",
    log: Callable[[str], None] = lambda message: None,
) -> BackupResult | None:
    """Upload the age-encrypted master key as its own backup; None when there is no key and nothing is
    sealed yet (a host before its first apply)."""
    path = settings.master_key
    if path is None or (not path.exists() and not sealed_secrets.any_sealed(conn)):
        return None
    started = time.monotonic()
    backup_id = backups.start(conn, MASTER_KEY_KEY, str(path), kind, settings.recipient, os.getpid())
    result = BackupResult(target=MASTER_KEY_KEY, backup_id=backup_id, ok=False)
    try:
        key = load_master_key(path)
        encrypted = subprocess.run(
            [settings.age_bin, "--encrypt", "--recipient", settings.recipient],
            input=base64.b64encode(key) + b"\n",
            capture_output=True,
            timeout=60,
            check=False,
        )
        if encrypted.returncode != 0:
            raise RestoreError(f"age exited {encrypted.returncode}: {encrypted.stderr.decode(errors='replace')[-300:]}")
        data = encrypted.stdout
        digest = hashlib.sha256(data).hexdigest()
        name = chunk_name(MASTER_KEY_KEY, backup_id, 0, datetime.now(UTC)).replace(".pgdump.", ".key.")
        document = client.send_document(data, name, f"nextmavens master key {backup_id} sha256={digest}")
        backups.add_chunk(
            conn, backup_id, 0, document.message_id, document.file_id, document.file_unique_id, len(data), digest
        )
        backups.complete(conn, backup_id, 1, len(data), None, None)
    except (MasterKeyError, RestoreError, TelegramError, OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
        result.error = f"master key backup failed: {exc}"
        result.cleanup_error = delete_uploaded(client, conn, backup_id)
        backups.fail(conn, backup_id, result.error, result.cleanup_error)
        log(f"{MASTER_KEY_KEY}: backup {backup_id} FAILED: {result.error}")
        return result
    result.ok, result.chunks, result.bytes = True, 1, len(data)
    result.seconds = time.monotonic() - started
    log(f"{MASTER_KEY_KEY}: backup {backup_id} complete (age-encrypted, {len(data)} bytes)")
    return result


def recover_master_key(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    identity: Path,
    out: Path,
    backup_id: int | None = None,
) -> int:
    """Download, check and decrypt a master key backup into `out` (0600, created, never overwritten).
    Returns the backup id used."""
    if out.exists():
        raise RestoreError(f"{out} already exists: a master key is never overwritten")
    record = choose_backup(conn, MASTER_KEY_KEY, backup_id)
    check_identity(record, identity)
    chunks = chunk_records(conn, record)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"nextmavens-key-{record.id}-", dir=settings.work_dir))
    folder.chmod(0o700)
    try:
        [part] = list(download_verified(client, record, chunks, folder))
        decrypted = subprocess.run(
            decrypt_argv(settings, identity), input=part.read_bytes(), capture_output=True, timeout=60, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if decrypted.returncode != 0:
        message = decrypted.stderr.decode(errors="replace").strip()[-300:]
        if "no identity matched" in message:
            raise WrongKeyError(f"decryption failed: the identity does not match this backup ({message})")
        raise RestoreError(f"decryption failed: age exited {decrypted.returncode}: {message}")
    try:
        key = base64.b64decode(decrypted.stdout.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise RestoreError(f"backup {record.id} does not hold a master key")
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        write_atomic(out, decrypted.stdout, 0o600, exclusive=True)  # never a half-written key, never over a file
    except FileExistsError:
        raise RestoreError(f"{out} already exists: a master key is never overwritten") from None
    load_master_key(out)  # the engine's own checks: mode and content
    return record.id
