"""`nextmavens backup run|list|restore|verify`."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg

from nextmavens.backup.alerts import Alerts, alerts_from_env
from nextmavens.backup.manifests import recover_manifests
from nextmavens.backup.masterkey import recover_master_key
from nextmavens.backup.pipeline import BackupError, BackupLock, Target, backup_target, run_backups
from nextmavens.backup.restore import RestoreError, choose_backup, replace_locked, restore_backup, scratch_name
from nextmavens.backup.retention import apply_retention
from nextmavens.backup.settings import (
    CONTROL_KEY,
    MANIFESTS_KEY,
    MASTER_KEY_KEY,
    BackupSettings,
    ConfigError,
    settings_from_env,
)
from nextmavens.backup.targets import all_targets, due, select, with_master_key
from nextmavens.backup.telegram import TelegramClient
from nextmavens.backup.verify import drill
from nextmavens.control.crypto import MasterKeyError
from nextmavens.control.db import connect_control
from nextmavens.control.store import backups
from nextmavens.manifest.loader import ManifestErrors


def _log(line: str) -> None:
    click.echo(line, err=True)


def _setup(require_recipient: bool = True) -> tuple[BackupSettings, psycopg.Connection, TelegramClient]:
    try:
        settings = settings_from_env(require_recipient=require_recipient)
        client = settings.telegram.client()
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    client.log = _log
    try:
        conn = connect_control(settings.dsn)
    except psycopg.Error as exc:
        raise click.ClickException(f"cannot reach the control database: {exc.__class__.__name__}") from None
    return settings, conn, client


def _targets(settings: BackupSettings, keys: tuple[str, ...], conn: psycopg.Connection) -> list[Target]:
    try:
        return select(all_targets(settings.projects_dir, conn), keys)
    except KeyError as exc:
        raise click.ClickException(f"unknown project(s): {exc.args[0]}") from None
    except ManifestErrors as exc:
        raise click.ClickException(f"invalid manifests, nothing backed up:\n{exc}") from None
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("backup")
def backup() -> None:
    """Encrypted backups of every project database and the control database, to Telegram."""


@backup.command("run")
@click.argument("projects", nargs=-1, metavar="[ORG/PROJECT ...]")
def run_command(projects: tuple[str, ...]) -> None:
    """Back up the named projects (default: all, and the control database), then apply retention."""
    settings, conn, client = _setup()
    targets = _targets(settings, projects, conn)
    alerts: Alerts = alerts_from_env()
    if not projects and os.environ.get("NEXTMAVENS_BACKUP_ONLY_DUE") == "1":
        # The hourly timer: only what each manifest's schedule makes due now.
        hour = int(os.environ.get("NEXTMAVENS_BACKUP_HOUR", "3"))
        last_good = backups.last_good_by_target(conn)
        now = datetime.now(UTC)
        everything = targets
        targets = [t for t in targets if due(t, last_good.get(t.key), now, hour)]
        click.echo(f"{len(targets)} of {len(everything)} backups due", err=True)
        retention_targets = everything
    else:
        retention_targets = targets
    try:
        results = run_backups(settings, conn, client, targets, kind="manual" if projects else "scheduled", log=_log)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for result in results:
        if result.ok:
            click.echo(
                f"{result.target}: backup {result.backup_id} complete: {result.chunks} chunks, "
                f"{result.bytes} bytes, {result.seconds:.1f}s"
            )
        else:
            click.echo(f"{result.target}: backup {result.backup_id} FAILED: {result.error}")
            extra = f"; cleanup: {result.cleanup_error}" if result.cleanup_error else ""
            alerts.send(f"backup of {result.target} FAILED (backup {result.backup_id}): {result.error}{extra}")
    for expired in apply_retention(conn, client, with_master_key(retention_targets)):
        note = f" (messages left: {expired.cleanup_error})" if expired.cleanup_error else ""
        click.echo(f"{expired.target}: backup {expired.backup_id} expired{note}")
    if not all(result.ok for result in results):
        sys.exit(1)


@backup.command("list")
@click.argument("project", required=False, metavar="[ORG/PROJECT]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(project: str | None, as_json: bool) -> None:
    """Backups, newest first. Only 'complete' ones are restorable."""
    try:
        settings = settings_from_env(require_recipient=False)
        conn = connect_control(settings.dsn)
    except (ConfigError, psycopg.Error) as exc:
        raise click.ClickException(str(exc)) from None
    rows = backups.listing(conn, project)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no backups")
        return
    click.echo(
        f"{'ID':>6}  {'TARGET':<28} {'STATUS':<9} {'KIND':<11} {'FINISHED (UTC)':<20} {'CHUNKS':>6} {'BYTES':>12}"
    )
    for r in rows:
        finished = f"{r.finished_at:%Y-%m-%d %H:%M:%S}" if r.finished_at else "-"
        status = r.status.upper() if r.status != "complete" else r.status
        click.echo(
            f"{r.id:>6}  {r.target:<28} {status:<9} {r.kind:<11} {finished:<20} {r.chunk_count or 0:>6} "
            f"{r.total_bytes or 0:>12}"
        )


def backup_choice(func: Callable[..., Any]) -> Callable[..., Any]:
    """--backup and --identity, as restore and recover-key take them."""
    func = click.option(
        "--identity",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The age identity (private key) file; it is read by age, never stored.",
    )(func)
    return click.option("--backup", "backup_id", type=int, help="Backup id (default: the newest complete one).")(func)


@backup.command("restore")
@click.argument("project", metavar="ORG/PROJECT")
@backup_choice
@click.option("--into", "into", help="New database to restore into (default: <database>_restored_<id>).")
@click.option("--replace", is_flag=True, help="Replace the live database (asks to confirm; backs it up first).")
def restore_command(project: str, backup_id: int | None, identity: Path, into: str | None, replace: bool) -> None:
    """Download, check, decrypt and pg_restore a backup into a new database."""
    if replace and into:
        raise click.UsageError("--replace and --into exclude each other")
    if project == MASTER_KEY_KEY:
        raise click.UsageError("the master key is not a database: recover it with `nextmavens backup recover-key`")
    if project == MANIFESTS_KEY:
        raise click.UsageError(
            "the manifest repository is not a database: recover it with `nextmavens backup recover-manifests`"
        )
    if replace and project == CONTROL_KEY:
        raise click.UsageError(
            "the control database is not replaced in place: restore it --into a new database, or follow the "
            "disaster-recovery steps in the README"
        )
    settings, conn, client = _setup(require_recipient=replace)
    record = None
    try:
        record = choose_backup(conn, project, backup_id)
    except RestoreError as exc:
        raise click.ClickException(str(exc)) from None
    if replace:
        click.confirm(
            f"Replace the live database {record.database} of {project} with backup {record.id}? "
            "It is backed up first and kept under a new name",
            abort=True,
        )
        target = next((t for t in _targets(settings, (), conn) if t.key == project), None)
        if target is None:
            raise click.ClickException(f"{project} is not in the manifests")
        try:
            with BackupLock(conn):
                fresh = backup_target(settings, conn, client, target, kind="pre-replace", log=_log)
        except BackupError as exc:
            raise click.ClickException(f"{exc}; nothing replaced") from None
        if not fresh.ok:
            raise click.ClickException(f"the fresh backup before replacing failed: {fresh.error}; nothing replaced")
        click.echo(f"fresh backup {fresh.backup_id} of the live database is complete")
    # A replace's copy gets a name of its own each time: a copy left by an earlier attempt is never reused.
    suffix = f"restored_{record.id}" + (f"_{datetime.now(UTC):%Y%m%d%H%M%S}" if replace else "")
    name = into or scratch_name(record.database, suffix)
    try:
        result = restore_backup(settings, conn, client, record, identity, name, _log)
    except (RestoreError, psycopg.Error) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup {record.id} of {project} restored into database {name} in {result.seconds:.1f}s")
    if replace:
        try:
            kept = replace_locked(settings, conn, record.database, name, _log)
        except (RestoreError, psycopg.Error) as exc:
            # The backup id, explicitly: the fresh backup just made is now the newest one.
            raise click.ClickException(
                f"{exc}\nNothing was replaced: {record.database} is unchanged, and the restored copy of backup "
                f"{record.id} is kept as {name} (drop it when done). To try again: nextmavens backup restore "
                f"{project} --backup {record.id} --identity {shlex.quote(str(identity))} --replace"
            ) from None
        click.echo(f"{record.database} now holds backup {record.id}; the previous database is kept as {kept}")


@backup.command("recover-key")
@backup_choice
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the key (default: NEXTMAVENS_MASTER_KEY, /etc/nextmavens/master.key); never overwritten.",
)
def recover_key_command(backup_id: int | None, identity: Path, out: Path | None) -> None:
    """Recover the master key from its backup (after restoring the control database on a new host)."""
    settings, conn, client = _setup(require_recipient=False)
    target = out or settings.master_key
    assert target is not None
    try:
        used = recover_master_key(settings, conn, client, identity, target, backup_id)
    except (RestoreError, MasterKeyError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"master key from backup {used} written to {target} (0600)")


@backup.command("recover-manifests")
@backup_choice
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bundle file to write (never overwritten); `git clone FILE DIR` makes the repository of it.",
)
def recover_manifests_command(backup_id: int | None, identity: Path, out: Path) -> None:
    """Recover the manifest repository (a git bundle of every branch) from its backup."""
    settings, conn, client = _setup(require_recipient=False)
    try:
        used = recover_manifests(settings, conn, client, identity, out, backup_id)
    except (RestoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"manifest repository from backup {used} written to {out}; `git clone {shlex.quote(str(out))} DIR`")


@backup.command("verify")
@click.argument("projects", nargs=-1, metavar="[ORG/PROJECT ...]")
def verify_command(projects: tuple[str, ...]) -> None:
    """Restore drill: fresh backup, restore into a scratch database, compare every table, drop it."""
    settings, conn, client = _setup()
    targets = _targets(settings, projects, conn)
    alerts = alerts_from_env()
    failed = 0
    try:
        with BackupLock(conn):  # one backup or drill at a time: a run's sweep must not take ours
            results = [drill(settings, conn, client, target, _log) for target in targets]
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    for target, result in zip(targets, results, strict=True):
        if result.ok:
            click.echo(f"{target.key}: verified backup {result.backup_id}: {result.tables} tables identical")
        else:
            failed += 1
            click.echo(f"{target.key}: verify FAILED: {result.error}")
            for problem in result.mismatches[:20]:
                click.echo(f"  {problem['table']}: {problem['problem']}")
            alerts.send(f"restore drill of {target.key} FAILED: {result.error}")
    if failed:
        sys.exit(1)
