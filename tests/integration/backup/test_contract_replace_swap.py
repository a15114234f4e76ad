"""`backup restore --replace` swaps databases in one transaction under the apply lock:
a restore killed in the middle of the swap leaves the live database in place and the next run completes
it; an apply started during the swap waits for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from nextmavens.backup.restore import replace_locked
from nextmavens.backup.settings import BackupSettings, TelegramSettings
from nextmavens.control.db import connect_control
from nextmavens.control.locks import LockTimeout
from nextmavens.manifest.loader import load_manifests
from tests.support.engine import REPO
from tests.support.projects import write_project

SWAP_WAIT = (
    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER DATABASE % RENAME%'"
)


def backup_settings(dsn: str, tmp_path: Path, lock_timeout_s: float = 60.0) -> BackupSettings:
    return BackupSettings(
        dsn=dsn,
        recipient="",
        telegram=TelegramSettings(tmp_path / "no-token", "0"),
        work_dir=tmp_path / "work",
        master_key=tmp_path / "master.key",
        lock_timeout_s=lock_timeout_s,
    )


def wait_for(check: Callable[[], object], what: str, seconds: float = 30.0) -> object:
    """Poll a condition on the server, bounded in time (the condition is the synchronisation)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def swap_held_between_renames(dsn: str, restored: str) -> Iterator[Callable[[], int]]:
    """Hold the row of `restored` in pg_database: a swap then stops after its first rename, uncommitted,
    until this releases it. Yields a function that waits for the swap to be stopped there (its pid)."""
    holder = psycopg.connect(dsn)
    holder.execute("SELECT 1 FROM pg_database WHERE datname = %s FOR UPDATE", (restored,))

    def stopped() -> int:
        def find() -> int | None:
            # Its own connection: pg_stat_activity is read once per transaction, and the holder's stays open.
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute(SWAP_WAIT).fetchone()
            return int(row[0]) if row else None

        return int(wait_for(find, "the swap to stop between its renames"))  # type: ignore[arg-type]

    try:
        yield stopped
    finally:
        holder.rollback()
        holder.close()


def databases(dsn: str) -> dict[str, bool]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, datallowconn FROM pg_database WHERE datname LIKE 'live%' OR datname = 'restored'"
        )
        return {str(name): bool(allowed) for name, allowed in rows.fetchall()}


def marker(server, database: str) -> str:
    with psycopg.connect(server.dsn_for(database), autocommit=True) as conn:
        return str(conn.execute("SELECT note FROM marker").fetchone()[0])  # type: ignore[index]


def test_contract_a_replace_killed_mid_swap_keeps_the_live_database_and_the_next_run_completes_it(
    fresh_pg, tmp_path: Path
) -> None:
    with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
        for name, note in (("live", "live data"), ("restored", "restored data")):
            conn.execute(f"CREATE DATABASE {name}")
            with psycopg.connect(fresh_pg.dsn_for(name), autocommit=True) as inside:
                inside.execute("CREATE TABLE marker (note text)")
                inside.execute("INSERT INTO marker VALUES (%s)", (note,))
    connect_control(fresh_pg.dsn).close()
    script = (
        "import sys; from pathlib import Path\n"
        "from nextmavens.backup.restore import replace_locked\n"
        "from nextmavens.control.db import connect_control\n"
        "from tests.integration.backup.test_contract_replace_swap import backup_settings\n"
        "settings = backup_settings(sys.argv[1], Path(sys.argv[2]))\n"
        "replace_locked(settings, connect_control(settings.dsn), 'live', 'restored')\n"
    )
    with swap_held_between_renames(fresh_pg.dsn, "restored") as stopped:
        swapper = subprocess.Popen(
            [sys.executable, "-c", script, fresh_pg.dsn, str(tmp_path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            backend = stopped()
            # Half-way through, everyone else still sees the live database under its name.
            assert databases(fresh_pg.dsn) == {"live": True, "restored": True}
            swapper.send_signal(signal.SIGKILL)
            swapper.wait(timeout=30)
        finally:
            if swapper.poll() is None:
                swapper.kill()
                swapper.wait(timeout=30)

    def backend_gone() -> bool:
        with psycopg.connect(fresh_pg.dsn, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone() is None

    wait_for(backend_gone, "the killed swap's session to end")
    # Nothing of the swap remains: the live database in place and open, the restored copy beside it.
    assert databases(fresh_pg.dsn) == {"live": True, "restored": True}
    assert marker(fresh_pg, "live") == "live data"

    # The next run completes it.
    control = connect_control(fresh_pg.dsn)
    kept = replace_locked(backup_settings(fresh_pg.dsn, tmp_path), control, "live", "restored")
    control.close()
    assert databases(fresh_pg.dsn) == {"live": True, kept: False}
    assert marker(fresh_pg, "live") == "restored data"


def test_contract_an_apply_started_during_a_replace_waits_for_it(stage, tmp_path: Path) -> None:
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    stage.sql("ALTER DATABASE shop SET search_path = app, \"$user\", public")  # the owner's own setting
    stage.sql("CREATE DATABASE shop_restored TEMPLATE shop OWNER postgres")  # owner and grants differ
    stage.sql("GRANT CONNECT ON DATABASE shop_restored TO PUBLIC")
    settings = backup_settings(stage.server.dsn, tmp_path)
    control = connect_control(stage.server.dsn)
    outcome: dict[str, object] = {}

    def replace() -> None:
        try:
            outcome["kept"] = replace_locked(settings, control, "shop", "shop_restored")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    with swap_held_between_renames(stage.server.dsn, "shop_restored") as stopped:
        thread = threading.Thread(target=replace)
        thread.start()
        stopped()
        with pytest.raises(LockTimeout, match="another apply is running"):
            stage.engine(lock_timeout_s=0.5).apply(load_manifests(stage.projects))
    thread.join(timeout=60)
    control.close()
    assert "error" not in outcome, outcome
    assert stage.sql("SELECT datallowconn FROM pg_database WHERE datname = %s", (outcome["kept"],)) == [(False,)]
    # The swapped-in copy carries the database's grants, limit and settings: the engine sees nothing to do.
    assert stage.plan().empty
    stage.apply()
