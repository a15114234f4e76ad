"""`nextmavens backup ...` through click, configured only by environment, against the real PostgreSQL and
the Telegram contract stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from devkit.localdb.datagen import generate
from nextmavens.backup.cli import backup
from nextmavens.backup.stats import table_stats


@pytest.fixture
def cli_env(fresh_pg, standin, age_key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A server of its own: `backup run` with no names covers every project the control database knows."""
    pg = fresh_pg
    projects = tmp_path / "projects" / "clitest"
    projects.mkdir(parents=True)
    (projects / "org.yaml").write_text("name: CLI Test\n")
    (projects / "clishop.yaml").write_text(
        "ref: clishop\nname: CLI Shop\nauth:\n  site_url: https://shop.cli.example\nbackup:\n  retention_days: 3\n"
    )
    from nextmavens.control.db import connect_control

    connect_control(pg.dsn).close()  # the engine's first apply creates it on the host
    token = tmp_path / "token"
    token.write_text(standin.state.token)
    token.chmod(0o600)
    env = {
        # As the host's nextmavens-env wrapper sets it: the DSN names the control database.
        "NEXTMAVENS_DSN": pg.dsn_for("nextmavens"),
        "NEXTMAVENS_TELEGRAM_TOKEN_FILE": str(token),
        "NEXTMAVENS_TELEGRAM_CHAT_ID": standin.state.chat_id,
        "NEXTMAVENS_TELEGRAM_API": standin.base_url,
        "NEXTMAVENS_BACKUP_RECIPIENT": age_key[1],
        "NEXTMAVENS_PROJECTS": str(tmp_path / "projects"),
        "NEXTMAVENS_PG_BIN": str(pg.bin_dir),
        "NEXTMAVENS_BACKUP_WORK_DIR": str(tmp_path / "work"),
        "NEXTMAVENS_BACKUP_CHUNK_BYTES": str(256 * 1024),
        "NEXTMAVENS_TELEGRAM_RETRIES": "3",
        "NEXTMAVENS_TELEGRAM_RETRY_DELAY": "0.01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clishop")
    with psycopg.connect(pg.dsn_for("clishop"), autocommit=True) as conn:
        generate(conn, tables=6, rows=40, blob_kb=2, text_kb=4)
    yield env
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'clishop%'").fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


def stats(pg, db: str) -> dict:
    with psycopg.connect(pg.dsn_for(db)) as conn:
        return table_stats(conn)


def test_contract_cli_run_list_restore_verify_replace(fresh_pg, standin, age_key, cli_env, tmp_path: Path) -> None:
    pg = fresh_pg
    runner = CliRunner()
    result = runner.invoke(backup, ["run"])
    assert result.exit_code == 0, result.output
    assert "clitest/clishop: backup" in result.output and "_platform/control: backup" in result.output
    assert standin.state.token not in result.output

    listed = runner.invoke(backup, ["list", "clitest/clishop", "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.output)
    assert entry["status"] == "complete" and entry["good"] and entry["chunks"] >= 1
    plain = runner.invoke(backup, ["list"])
    assert "clitest/clishop" in plain.output and "_platform/control" in plain.output

    restored = runner.invoke(
        backup, ["restore", "clitest/clishop", "--identity", str(age_key[0]), "--into", "clishop_copy"]
    )
    assert restored.exit_code == 0, restored.output
    assert stats(pg, "clishop_copy") == stats(pg, "clishop")

    verified = runner.invoke(backup, ["verify", "clitest/clishop"])
    assert verified.exit_code == 0, verified.output
    assert "6 tables identical" in verified.output

    # Replacing the live database: refused without confirmation...
    before = stats(pg, "clishop")
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE clishop_reader LOGIN")
        conn.execute("REVOKE ALL ON DATABASE clishop FROM PUBLIC")
        conn.execute("GRANT CONNECT ON DATABASE clishop TO clishop_reader")
        conn.execute("ALTER DATABASE clishop CONNECTION LIMIT 7")
    with psycopg.connect(pg.dsn_for("clishop"), autocommit=True) as conn:
        conn.execute("DELETE FROM public.t000_users")  # the accident being undone
    replace = ["restore", "clitest/clishop", "--backup", str(entry["id"]), "--identity", str(age_key[0]), "--replace"]
    declined = runner.invoke(backup, replace, input="n\n")
    assert declined.exit_code != 0 and "Aborted" in declined.output
    # ...and with it: a fresh backup first, then the swap; the old database is kept under a new name.
    replaced = runner.invoke(backup, replace, input="y\n")
    assert replaced.exit_code == 0, replaced.output
    assert "fresh backup" in replaced.output
    assert stats(pg, "clishop") == before
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        kept = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'clishop_replaced_%'").fetchall()
        acl = conn.execute("SELECT datacl::text, datconnlimit FROM pg_database WHERE datname = 'clishop'").fetchone()
        conn.execute("DROP DATABASE IF EXISTS clishop_copy")
    assert len(kept) == 1
    # The database-level grants follow the name: the reader may still connect, PUBLIC still may not.
    assert acl is not None and "clishop_reader=c/" in acl[0] and "=Tc/" not in acl[0]
    assert acl[1] == 7
    kinds = [e["kind"] for e in json.loads(runner.invoke(backup, ["list", "clitest/clishop", "--json"]).output)]
    assert "pre-replace" in kinds


def test_contract_cli_failed_run_exits_nonzero_and_alerts(standin, cli_env) -> None:
    standin.state.fail_uploads_after = 0
    standin.state.fail_next_uploads = 0
    runner = CliRunner()
    result = runner.invoke(backup, ["run", "clitest/clishop"])
    assert result.exit_code == 1
    assert "FAILED" in result.output
    alerts = [m.text for m in standin.state.messages.values() if m.text]
    assert any("backup of clitest/clishop FAILED" in text for text in alerts)
    listed = json.loads(runner.invoke(backup, ["list", "clitest/clishop", "--json"]).output)
    assert listed[0]["good"] is False and listed[0]["status"] == "failed"  # newest first


def test_cli_unknown_project_and_missing_settings(cli_env, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(backup, ["run", "nope/nothing"])
    assert result.exit_code != 0 and "unknown project" in result.output
    monkeypatch.delenv("NEXTMAVENS_BACKUP_RECIPIENT")
    result = runner.invoke(backup, ["run"])
    assert result.exit_code != 0 and "NEXTMAVENS_BACKUP_RECIPIENT" in result.output


def test_contract_project_without_manifest_keeps_being_backed_up(fresh_pg, standin, cli_env) -> None:
    """Removing a manifest never drops data, so the database the control database still knows is backed up."""
    from nextmavens.control.db import connect_control

    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE orphan")
    control = connect_control(fresh_pg.dsn)
    control.execute("INSERT INTO projects (ref, org, name, state) VALUES ('orphan', 'clitest', 'Orphan', 'active')")
    control.close()
    result = CliRunner().invoke(backup, ["run"])
    assert result.exit_code == 0, result.output
    assert "clitest/orphan: backup" in result.output and "clitest/clishop: backup" in result.output
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE orphan")


def test_cli_missing_projects_folder_is_loud(cli_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEXTMAVENS_PROJECTS", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(backup, ["run"])
    assert result.exit_code != 0 and "projects folder" in result.output


def test_cli_control_database_is_never_replaced_in_place(cli_env, age_key) -> None:
    result = CliRunner().invoke(
        backup, ["restore", "_platform/control", "--identity", str(age_key[0]), "--replace"], input="y\n"
    )
    assert result.exit_code != 0 and "not replaced in place" in result.output


def test_contract_cli_replace_waits_for_a_running_apply_then_says_nothing_changed(
    fresh_pg, standin, age_key, cli_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The swap takes the apply lock; when an apply holds it too long, a clear error (no
    traceback) says the live database is unchanged and where the restored copy is."""
    from nextmavens.control.db import connect_control
    from nextmavens.control.locks import apply_lock

    runner = CliRunner()
    assert runner.invoke(backup, ["run", "clitest/clishop"]).exit_code == 0
    monkeypatch.setenv("NEXTMAVENS_LOCK_TIMEOUT", "0.5")
    before = stats(fresh_pg, "clishop")
    with psycopg.connect(fresh_pg.dsn_for("clishop"), autocommit=True) as conn:
        conn.execute("DELETE FROM public.t000_users")  # the accident being undone
    damaged = stats(fresh_pg, "clishop")
    applying = connect_control(fresh_pg.dsn)
    try:
        with apply_lock(fresh_pg.dsn, applying, 60.0):
            result = runner.invoke(
                backup, ["restore", "clitest/clishop", "--identity", str(age_key[0]), "--replace"], input="y\n"
            )
    finally:
        applying.close()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "another apply is running" in result.output and "Nothing was replaced" in result.output
    kept = result.output.split("is kept as ", 1)[1].split(" ", 1)[0]
    assert stats(fresh_pg, kept) == before and stats(fresh_pg, "clishop") == damaged
    # The command it suggests restores the same backup (not the fresh one of the damaged database).
    retry = result.output.split("To try again: nextmavens backup ", 1)[1].split()
    again = runner.invoke(backup, retry, input="y\n")
    assert again.exit_code == 0, again.output
    assert stats(fresh_pg, "clishop") == before
