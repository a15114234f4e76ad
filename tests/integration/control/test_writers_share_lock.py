"""Every writer of project databases takes the one apply lock: a keys rotate and a restore's swap wait
for an apply that holds it, and run after it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.locks import APPLY_LOCK_KEY, LockTimeout, apply_lock
from nextmavens.manifest.loader import load_manifests
from tests.support.engine import REPO, Stage
from tests.support.projects import write_project

WAITING_FOR_APPLY_LOCK = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND ((classid::bigint << 32) | objid::bigint) = %s"
)


def _waiting(stage: Stage) -> int:
    return int(stage.sql(WAITING_FOR_APPLY_LOCK, (APPLY_LOCK_KEY,), dbname="nextmavens")[0][0])


def test_a_rotate_waits_for_a_running_apply_and_a_restore_swap_times_out(stage: Stage) -> None:
    write_project(stage.projects, "acme", "alpha")
    stage.apply()
    write_project(stage.projects, "acme", "bravo")  # the next apply has changes to confirm
    manifests = load_manifests(stage.projects)
    holding, release = threading.Event(), threading.Event()

    def slow_confirm(_plan: object) -> bool:
        holding.set()
        release.wait(60)
        return True

    applied: list[object] = []
    apply = threading.Thread(target=lambda: applied.append(stage.engine().apply(manifests, confirm=slow_confirm)))
    apply.start()
    rotate: subprocess.Popen[str] | None = None
    try:
        assert holding.wait(60)
        # The restore's swap takes the same lock, through the same function: with a short timeout it gives up.
        with connect_control(stage.server.dsn) as control:
            with pytest.raises(LockTimeout, match="another apply is running"):
                with apply_lock(stage.server.dsn, control, 0.3):
                    pass
        rotate = subprocess.Popen(
            [sys.executable, "-m", "nextmavens.cli", "keys", "rotate", "acme/alpha", "--lock-timeout", "60"],
            env=stage.env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while _waiting(stage) == 0:
            assert rotate.poll() is None, "the rotate ended while the apply held the lock"
            assert time.monotonic() < deadline, "the rotate never waited for the apply lock"
            time.sleep(0.05)
        assert rotate.poll() is None
    finally:
        release.set()
        apply.join(120)
    assert rotate is not None
    _, stderr = rotate.communicate(timeout=120)
    assert rotate.returncode == 0, stderr
    assert applied and applied[0] is not None
    runs = stage.sql(
        "SELECT command, result, started_at, finished_at FROM apply_runs ORDER BY id", dbname="nextmavens"
    )
    assert [(command, result) for command, result, _, _ in runs] == [
        ("apply", "ok"),
        ("apply", "ok"),
        ("keys rotate", "ok"),
    ]
    assert runs[2][2] >= runs[1][3], "the rotate's run started before the apply's ended"
