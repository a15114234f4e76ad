"""Disaster recovery on a new host: the control database's backups are useless without the
master key, so every run backs the key up too, encrypted to the operator's age key. On a new, empty
PostgreSQL server the README's steps bring everything back: the control database from its chunks, the
master key with the operator's identity, the secrets unsealed, the project restored, and `apply` has
nothing left to do."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from devkit.localdb.server import LocalPostgres
from nextmavens.backup.cli import backup
from nextmavens.control.db import connect_control, dsn_without_password
from nextmavens.control.store import backups
from nextmavens.naming import METRICS_ROLE, PLATFORM_ROLE
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.scratch import cloned_server


@pytest.fixture
def new_host(pg_template: LocalPostgres) -> Iterator[LocalPostgres]:
    """A second new, empty server: the replacement host."""
    with cloned_server(pg_template, "nextmavens-pgnew-") as (server, _):
        yield server


def host_env(
    monkeypatch: pytest.MonkeyPatch,
    server: LocalPostgres,
    master_key: Path,
    projects: Path,
    standin,
    age_key,
    tmp_path: Path,
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    token = tmp_path / "token"
    token.write_text(standin.state.token)
    token.chmod(0o600)
    for name, value in {
        "NEXTMAVENS_DSN": server.dsn_for("nextmavens"),
        "NEXTMAVENS_MASTER_KEY": str(master_key),
        "NEXTMAVENS_PROJECTS": str(projects),
        "NEXTMAVENS_TELEGRAM_TOKEN_FILE": str(token),
        "NEXTMAVENS_TELEGRAM_CHAT_ID": standin.state.chat_id,
        "NEXTMAVENS_TELEGRAM_API": standin.base_url,
        "NEXTMAVENS_BACKUP_RECIPIENT": age_key[1],
        "NEXTMAVENS_PG_BIN": str(server.bin_dir),
        "NEXTMAVENS_BACKUP_WORK_DIR": str(tmp_path / "work"),
        "NEXTMAVENS_BACKUP_CHUNK_BYTES": str(64 * 1024),
        "NEXTMAVENS_TELEGRAM_RETRIES": "3",
        "NEXTMAVENS_TELEGRAM_RETRY_DELAY": "0.01",
    }.items():
        monkeypatch.setenv(name, value)


def test_contract_recovery_on_a_fresh_host(
    stage, new_host: LocalPostgres, standin, age_key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    # The old host: a project with data, its secrets sealed with the master key, a backup run.
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute("CREATE TABLE public.orders (id int PRIMARY KEY, note text)")
        owner.execute("INSERT INTO public.orders SELECT g, 'order ' || g FROM generate_series(1, 40) g")
    owner_password = stage.password("shop", "owner_shop")
    host_env(monkeypatch, stage.server, stage.master_key, stage.projects, standin, age_key, tmp_path / "old")
    ran = runner.invoke(backup, ["run"])
    assert ran.exit_code == 0, ran.output
    assert "_platform/master-key: backup" in ran.output and "_platform/control: backup" in ran.output

    # The key never left in plain text: not in the channel, not in any output.
    key_line = stage.master_key.read_bytes().strip()
    uploads = [standin.state.file_path(d.file_id).read_bytes() for d in standin.state.live_documents()]
    assert uploads and not any(key_line in data for data in uploads)
    assert key_line.decode() not in ran.output

    # What the operator downloads from the channel: the newest control database set (its chunks, in
    # order, each checked against the sha256 in its caption). The old host is gone after this.
    with connect_control(stage.server.dsn) as old_control:
        control_backup = backups.latest_complete(old_control, "_platform/control")
        assert control_backup is not None
        parts = []
        for chunk in backups.chunks(old_control, control_backup.id):
            path = standin.state.file_path(chunk.file_id)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == chunk.sha256
            parts.append(path)
    stage.server.stop()

    # The new host, step 1: the control database, exactly as the README says (its grants name the service's and the
    # collector's roles, which a converged host has: the deploy creates them; a bare server, as here, needs them first).
    with psycopg.connect(new_host.dsn, autocommit=True) as conn:
        for role in (PLATFORM_ROLE, METRICS_ROLE):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute("CREATE DATABASE nextmavens")
        conn.execute("REVOKE ALL ON DATABASE nextmavens FROM PUBLIC")
    decrypt = subprocess.Popen(
        ["sh", "-c", 'cat "$@" | age --decrypt --identity "$0"', str(age_key[0]), *map(str, parts)],
        stdout=subprocess.PIPE,
    )
    restored = subprocess.run(
        [
            str(new_host.bin_dir / "pg_restore"),
            "--exit-on-error",
            "--no-password",
            f"--dbname={dsn_without_password(new_host.dsn_for('nextmavens'))[0]}",
        ],
        stdin=decrypt.stdout,
        env={**os.environ, "PGPASSWORD": new_host.password},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert decrypt.wait(timeout=60) == 0 and restored.returncode == 0, restored.stderr

    # Step 2: the master key, with the operator's identity, written 0600 where the engine reads it.
    new_key = tmp_path / "new" / "etc" / "master.key"
    host_env(monkeypatch, new_host, new_key, stage.projects, standin, age_key, tmp_path / "new")
    recovered = runner.invoke(backup, ["recover-key", "--identity", str(age_key[0])])
    assert recovered.exit_code == 0, recovered.output
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600
    assert base64.b64decode(new_key.read_text()) == base64.b64decode(key_line)
    assert key_line.decode() not in recovered.output
    again = runner.invoke(backup, ["recover-key", "--identity", str(age_key[0])])
    assert again.exit_code != 0 and "never overwritten" in again.output

    # Step 3: the secrets unseal with it; apply creates the roles (same passwords) and the database.
    new_stage = Stage(server=new_host, projects=stage.projects, master_key=new_key)
    assert new_stage.password("shop", "owner_shop") == owner_password
    new_stage.apply()

    # Step 4: the project's data, swapped in; then apply has nothing left to do.
    replaced = runner.invoke(
        backup, ["restore", "acme/shop", "--identity", str(age_key[0]), "--replace"], input="y\n"
    )
    assert replaced.exit_code == 0, replaced.output
    assert new_stage.plan().empty
    with new_stage.login("owner_shop", "shop", "shop") as owner:
        assert owner.execute("SELECT count(*) FROM public.orders").fetchone() == (40,)


def test_contract_master_key_backup_skipped_before_first_apply_failed_when_the_key_is_lost(
    fresh_pg, standin, age_key, tmp_path: Path
) -> None:
    from nextmavens.backup.masterkey import backup_master_key
    from nextmavens.backup.settings import BackupSettings, TelegramSettings
    from nextmavens.backup.targets import with_master_key
    from tests.integration.backup.conftest import FAST_RETRY

    token = tmp_path / "token"
    token.write_text(standin.state.token)
    token.chmod(0o600)
    settings = BackupSettings(
        dsn=fresh_pg.dsn,
        recipient=age_key[1],
        telegram=TelegramSettings(token, standin.state.chat_id, standin.base_url, FAST_RETRY),
        work_dir=tmp_path / "work",
        master_key=tmp_path / "missing.key",
    )
    client = settings.telegram.client()
    control = connect_control(fresh_pg.dsn)
    try:
        assert backup_master_key(settings, control, client) is None  # nothing sealed yet: nothing to lose
        control.execute("INSERT INTO secrets (scope, name, nonce, ciphertext) VALUES ('x', 'y', 'n', 'c')")
        result = backup_master_key(settings, control, client)
        assert result is not None and not result.ok and "does not exist" in (result.error or "")
        assert backups.get(control, result.backup_id).status == "failed"
    finally:
        control.close()
    # Kept as long as the control database's backups.
    from nextmavens.backup.targets import all_targets

    [*_, key_target] = with_master_key(all_targets(None))
    assert key_target.key == "_platform/master-key" and key_target.retention_days == 14


def test_cli_restore_refuses_the_master_key_as_a_database(age_key) -> None:
    result = CliRunner().invoke(backup, ["restore", "_platform/master-key", "--identity", str(age_key[0])])
    assert result.exit_code != 0 and "recover-key" in result.output
