"""The daily summary and `nextmavens status` against the real control database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from nextmavens.backup.pipeline import Target
from nextmavens.control.db import connect_control
from nextmavens.monitor.cli import status
from nextmavens.monitor.summary import backup_freshness, gather, render


def test_backup_freshness_follows_each_schedule() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    targets = [
        Target("a/hourly", "h", "hourly"),
        Target("a/daily", "d", "daily"),
        Target("a/weekly", "w", "weekly"),
        Target("a/never", "n", "daily"),
    ]
    last = {
        "a/hourly": now - timedelta(hours=3),
        "a/daily": now - timedelta(hours=20),
        "a/weekly": now - timedelta(days=6),
    }
    rows, problems = backup_freshness(targets, last, now)
    assert [r["stale"] for r in rows] == [True, False, False, True]
    assert problems == [
        "backup of a/hourly is stale: last good 3.0 h ago, schedule hourly",
        "backup of a/never is stale: last good never, schedule daily",
    ]


def test_summary_gathers_disk_databases_backups(pg, tmp_path: Path) -> None:
    control = connect_control(pg.dsn)
    control.execute(
        "INSERT INTO backups (target, database, status, recipient, finished_at, chunk_count, total_bytes)"
        " VALUES ('sum/shop', 'shop', 'complete', 'age1x', now() - interval '1 hour', 1, 10)"
    )
    summary = gather(pg.dsn, control, [Target("sum/shop", "shop"), Target("sum/crm", "crm")], ["/"], None)
    assert summary.disk[0]["path"] == "/" and 0 < summary.disk[0]["percent"] < 100
    assert "nextmavens" in {d["name"] for d in summary.databases}
    assert [b["stale"] for b in summary.backups] == [False, True]
    assert summary.containers is None
    text = render(summary)
    assert "backup of sum/crm is stale" in text and "docker engine unreachable" in text
    control.close()


def test_status_json_and_text(pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTMAVENS_DSN", pg.dsn)
    monkeypatch.setenv("NEXTMAVENS_STATE_DIR", str(tmp_path))
    (tmp_path / "storage.json").write_text(json.dumps({"paths": {"/": {"level": 80, "percent": 81.0}}}))
    runner = CliRunner()
    result = runner.invoke(status, ["--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["monitors"]["storage"]["/"]["level"] == 80
    assert {"disk", "databases", "backups", "containers", "problems"} <= set(data)
    text = runner.invoke(status, [])
    assert "Disk:" in text.output and "Databases:" in text.output


def monitor_env(monkeypatch: pytest.MonkeyPatch, server, tmp_path: Path) -> None:
    """As the host's timers run the monitors: a DSN, a state folder, no manifests."""
    monkeypatch.setenv("NEXTMAVENS_DSN", server.dsn)
    monkeypatch.setenv("NEXTMAVENS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NEXTMAVENS_PROJECTS", str(tmp_path / "no-projects"))


def test_health_alerts_a_stale_backup_once_then_its_recovery(
    fresh_pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nextmavens.monitor.cli import monitor

    monitor_env(monkeypatch, fresh_pg, tmp_path)
    runner = CliRunner()
    first = runner.invoke(monitor, ["health"])
    assert first.exit_code == 0, first.output
    assert "backup:_platform/control is DOWN: never backed up" in first.stderr
    second = runner.invoke(monitor, ["health"])
    assert "backup:" not in second.stderr  # still stale: not repeated
    control = connect_control(fresh_pg.dsn)
    control.execute(
        "INSERT INTO backups (target, database, status, recipient, finished_at, chunk_count, total_bytes)"
        " VALUES ('_platform/control', 'nextmavens', 'complete', 'age1x', now(), 1, 10)"
    )
    control.close()
    third = runner.invoke(monitor, ["health"])
    assert "backup:_platform/control recovered: last good 0.0 h ago" in third.stderr


def test_status_reports_a_superuser_the_platform_does_not_manage(
    fresh_pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An escalated tenant role (or any unmanaged superuser) is a problem in `status`."""
    monitor_env(monkeypatch, fresh_pg, tmp_path)
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE nextmavens_layer NOLOGIN SUPERUSER")  # the engine's own: expected
        conn.execute("CREATE ROLE supabase_admin NOLOGIN SUPERUSER")  # the supabase image's bootstrap role
        conn.execute("CREATE ROLE owner_shop LOGIN SUPERUSER")
    runner = CliRunner()
    data = json.loads(runner.invoke(status, ["--json"]).output)
    assert data["superusers"] == {
        "expected": ["nextmavens_layer", "postgres", "supabase_admin"],
        "unexpected": ["owner_shop"],
    }
    assert any("owner_shop is a superuser the platform does not manage" in p for p in data["problems"])
    text = runner.invoke(status, [])
    assert text.exit_code == 1 and "unexpected: owner_shop" in text.output
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("ALTER ROLE owner_shop NOSUPERUSER")
    data = json.loads(runner.invoke(status, ["--json"]).output)
    assert data["superusers"]["unexpected"] == [] and not any("superuser" in p for p in data["problems"])


def test_health_alerts_an_unmanaged_superuser_once_then_its_removal(
    fresh_pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nextmavens.monitor.cli import monitor

    monitor_env(monkeypatch, fresh_pg, tmp_path)
    runner = CliRunner()
    assert "superuser:" not in runner.invoke(monitor, ["health"]).stderr  # postgres is expected
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE owner_shop LOGIN SUPERUSER")
    first = runner.invoke(monitor, ["health"])
    assert first.exit_code == 0, first.output
    assert "superuser:owner_shop is DOWN: role owner_shop is a superuser the platform does not manage" in first.stderr
    assert "superuser:" not in runner.invoke(monitor, ["health"]).stderr  # still there: not repeated
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        conn.execute("ALTER ROLE owner_shop NOSUPERUSER")
    assert "superuser:owner_shop recovered: no longer a superuser" in runner.invoke(monitor, ["health"]).stderr
