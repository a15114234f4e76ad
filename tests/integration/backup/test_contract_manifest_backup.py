"""The manifest repository is backed up as one encrypted git bundle (through the Telegram stand-in) and recovered
into a repository with every branch and commit, the platform service's included."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from nextmavens.backup.cli import backup
from nextmavens.backup.manifests import backup_manifests, recover_manifests
from nextmavens.backup.restore import RestoreError
from nextmavens.backup.settings import MANIFESTS_KEY, BackupSettings
from nextmavens.backup.telegram import TelegramClient
from nextmavens.control.store import backups
from nextmavens.gitrepo import git_ok

IDENT = ["-c", "user.name=Op", "-c", "user.email=op@example.com"]


def _repository(folder: Path) -> str:
    folder.mkdir()
    git_ok(folder, "init", "--quiet", "--initial-branch=main")
    (folder / "acme").mkdir()
    (folder / "acme" / "org.yaml").write_text("org: acme\n")
    git_ok(folder, "add", "--all")
    git_ok(folder, *IDENT, "commit", "--quiet", "-m", "acme")
    git_ok(folder, "branch", "draft")
    (folder / "acme" / "shop.yaml").write_text("ref: shop\n")
    git_ok(folder, "add", "--all")
    git_ok(folder, *IDENT, "commit", "--quiet", "-m", "shop, through the service")
    return git_ok(folder, "rev-parse", "HEAD").strip()


def test_the_repository_backs_up_as_an_encrypted_bundle_and_clones_back(
    settings: BackupSettings,
    control: psycopg.Connection,
    client: TelegramClient,
    age_key: tuple[Path, str],
    tmp_path: Path,
) -> None:
    head = _repository(tmp_path / "projects")
    settings = dataclasses.replace(settings, projects_dir=tmp_path / "projects")
    result = backup_manifests(settings, control, client)
    assert result is not None and result.ok, result and result.error
    record = backups.get(control, result.backup_id)
    assert record is not None and record.status == "complete" and record.target == MANIFESTS_KEY
    out = tmp_path / "recovered.bundle"
    assert recover_manifests(settings, control, client, age_key[0], out) == result.backup_id
    clone = tmp_path / "clone"
    git_ok(tmp_path, "clone", "--quiet", "--mirror", str(out), str(clone))
    assert git_ok(clone, "rev-parse", "main").strip() == head
    assert git_ok(clone, "rev-parse", "draft").strip() == git_ok(tmp_path / "projects", "rev-parse", "draft").strip()
    with pytest.raises(RestoreError, match="never overwritten"):
        recover_manifests(settings, control, client, age_key[0], out)


def test_a_projects_folder_without_git_has_no_repository_backup(
    settings: BackupSettings, control: psycopg.Connection, client: TelegramClient, tmp_path: Path
) -> None:
    (tmp_path / "plain").mkdir()
    assert backup_manifests(dataclasses.replace(settings, projects_dir=tmp_path / "plain"), control, client) is None


def test_cli_restore_refuses_the_manifest_repository_as_a_database(age_key: tuple[Path, str]) -> None:
    result = CliRunner().invoke(backup, ["restore", MANIFESTS_KEY, "--identity", str(age_key[0])])
    assert result.exit_code != 0 and "recover-manifests" in result.output
