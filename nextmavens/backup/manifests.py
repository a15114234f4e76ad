"""The manifest repository's own backup: every run that backs up the control database also uploads the projects
folder's git repository (NEXTMAVENS_PROJECTS, when it is one) as `git bundle --all`, age-encrypted, one chunk, target
`_platform/manifests`. `backup recover-manifests` writes the newest one back as a bundle file, which
`git clone` turns into the repository again, history and the platform service's commits included."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from nextmavens import gitrepo
from nextmavens.backup.artifact import backup_artifact, recover_artifact
from nextmavens.backup.restore import RestoreError
from nextmavens.backup.settings import MANIFESTS_KEY, BackupSettings
from nextmavens.backup.telegram import TelegramClient
from nextmavens.backup.uploads import BackupResult

BUNDLE_MODE = 0o644  # manifests hold no secret


def backup_manifests(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    kind: str = "scheduled",
    log: Callable[[str], None] = lambda message: None,
) -> BackupResult | None:
    """Upload the repository as an encrypted bundle; None when the projects folder is no repository with a commit."""
    folder = settings.projects_dir
    if folder is None or gitrepo.revision(folder) is None:
        return None

    def read() -> bytes:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="nextmavens-manifests-", dir=settings.work_dir) as tmp:
            target = Path(tmp) / "manifests.bundle"
            gitrepo.bundle(folder, target, "--all")
            return target.read_bytes()

    return backup_artifact(
        settings,
        conn,
        client,
        key=MANIFESTS_KEY,
        source=str(folder),
        read=read,
        suffix="bundle",
        label="manifest repository",
        errors=(gitrepo.GitFailed,),
        kind=kind,
        log=log,
    )


def recover_manifests(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    identity: Path,
    out: Path,
    backup_id: int | None = None,
) -> int:
    """Download, check and decrypt a manifest repository backup into the bundle file `out` (never overwritten);
    returns the backup id used."""
    return recover_artifact(
        settings, conn, client, MANIFESTS_KEY, identity, out, mode=BUNDLE_MODE, check=_is_bundle, backup_id=backup_id
    )


def _is_bundle(backup_id: int, data: bytes) -> None:
    if not data.startswith((b"# v2 git bundle", b"# v3 git bundle")):
        raise RestoreError(f"backup {backup_id} does not hold a git bundle")
