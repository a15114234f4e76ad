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
from collections.abc import Callable
from pathlib import Path

import psycopg

from nextmavens.backup.artifact import backup_artifact, recover_artifact
from nextmavens.backup.restore import RestoreError
from nextmavens.backup.settings import MASTER_KEY_KEY, BackupSettings
from nextmavens.backup.telegram import TelegramClient
from nextmavens.backup.uploads import BackupResult
from nextmavens.control.crypto import KEY_BYTES, MasterKeyError, load_master_key
from nextmavens.control.store import secrets as sealed_secrets


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
    return backup_artifact(
        settings,
        conn,
        client,
        key=MASTER_KEY_KEY,
        source=str(path),
        read=lambda: base64.b64encode(load_master_key(path)) + b"\n",
        suffix="key",
        label="master key",
        errors=(MasterKeyError,),
        kind=kind,
        log=log,
    )


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
    used = recover_artifact(
        settings, conn, client, MASTER_KEY_KEY, identity, out, mode=0o600, check=_holds_a_key, backup_id=backup_id
    )
    load_master_key(out)  # the engine's own checks: mode and content
    return used


def _holds_a_key(backup_id: int, decrypted: bytes) -> None:
    try:
        key = base64.b64decode(decrypted.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise RestoreError(f"backup {backup_id} does not hold a master key")
