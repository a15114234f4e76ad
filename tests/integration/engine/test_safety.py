"""An apply killed mid-way, two applies at once, hostile manifests: the cluster stays consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devkit.localdb.server import LocalPostgres
from nextmavens.control.locks import WORK_LOCK_KEY, LockTimeout
from nextmavens.engine.session import ApplyResult
from nextmavens.manifest.loader import load_manifests
from nextmavens.naming import project_names
from tests.support.engine import REPO, Stage
from tests.support.projects import write_project, write_raw
from tests.support.scratch import cloned_server

REFS = ("alpha", "bravo", "charlie")


@pytest.fixture
def durable_stage(pg_template: LocalPostgres, tmp_path: Path) -> Iterator[Stage]:
    """A stage on a server with fsync on: killed applies must be tested against real durability timings."""
    with cloned_server(pg_template, "nextmavens-pgdurable-", fast=False) as (server, _):
        projects = tmp_path / "projects"
        projects.mkdir()
        yield Stage(server=server, projects=projects, master_key=tmp_path / "keys" / "master.key")


def _write_three(stage: Stage) -> None:
    for ref in REFS:
        write_project(stage.projects, "acme", ref, database={"extensions": ["pgcrypto"], "schemas": ["app"]})


def _start_apply(stage: Stage) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "nextmavens.cli", "apply", "--yes"],
        env=stage.env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_converged_and_usable(stage: Stage) -> None:
    assert stage.plan().empty
    for ref in REFS:
        names = project_names(ref)
        for role in names.login_roles:  # every stored password is the one the role really has
            with stage.login(role, names.database, ref) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (role,)
    # Nothing duplicated: one secret of each kind, one active key pair per project.
    assert (
        stage.sql("SELECT scope, name, count(*) FROM secrets GROUP BY 1, 2 HAVING count(*) > 1", dbname="nextmavens")
        == []
    )
    assert stage.sql(
        "SELECT ref, count(*) FROM api_keys WHERE revoked_at IS NULL GROUP BY ref", dbname="nextmavens"
    ) == [(ref, 2) for ref in sorted(REFS)]


@pytest.mark.parametrize("kill_after_steps", [1, 7, 19, 33, 52, 70])
def test_an_apply_killed_between_steps_is_completed_by_the_next(durable_stage: Stage, kill_after_steps: int) -> None:
    stage = durable_stage
    _write_three(stage)
    process = _start_apply(stage)
    assert process.stdout is not None
    steps = 0
    deadline = time.monotonic() + 60
    for line in process.stdout:  # one line per change, printed just before it runs
        if line.startswith("  acme/") or line.startswith("  cluster"):
            steps += 1
        if steps >= kill_after_steps or time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the apply finished before it could be killed"
    assert not stage.plan().empty
    stage.apply()
    _assert_converged_and_usable(stage)
    # The killed run is not left "running" for ever: the next holder of the lock marks it interrupted.
    runs = stage.sql("SELECT result, finished_at IS NOT NULL FROM apply_runs ORDER BY id", dbname="nextmavens")
    assert runs == [("interrupted", True), ("ok", True)]


# Backends (other than a given pid) whose CREATE DATABASE waits for a lock; backends waiting for the work lock.
CREATING = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE %%' AND wait_event_type = 'Lock'"
    " AND pid <> %s"
)
WAITING_FOR_WORK = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND ((classid::bigint << 32) | objid::bigint) = %s"
)


def _backends(stage: Stage, query: str, params: tuple[object, ...] = ()) -> list[int]:
    return [pid for (pid,) in stage.sql(query, params)]


def _poll(what: str, check, timeout: float = 60):  # type: ignore[no-untyped-def]
    """Wait for a state of the server the test cannot be told about (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_next_apply_waits_for_a_killed_applys_create_database(durable_stage: Stage) -> None:
    """The killed apply's backend runs CREATE DATABASE on after its client died; the next apply must not
    plan against the half-made cluster (it did, and failed with UniqueViolation)."""
    stage = durable_stage
    write_project(stage.projects, "acme", "alpha")
    # CREATE DATABASE takes a share lock on its template: holding a conflicting one keeps the statement
    # running for as long as the test needs, after its process is gone.
    with psycopg.connect(stage.server.dsn, autocommit=True) as blocker:
        with blocker.transaction():
            blocker.execute("COMMENT ON DATABASE template0 IS NULL")
            process = _start_apply(stage)
            try:
                [orphan] = _poll("the apply's CREATE DATABASE", lambda: _backends(stage, CREATING, (0,)))
            finally:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            alive = "SELECT pid FROM pg_stat_activity WHERE pid = %s"
            assert _backends(stage, alive, (orphan,)) == [orphan], "its statement ended with the process"

            results: list[ApplyResult | Exception] = []

            def apply_next() -> None:
                try:
                    results.append(stage.apply())
                except Exception as exc:
                    results.append(exc)

            nextone = threading.Thread(target=apply_next)
            nextone.start()
            # Either the next apply waits for the orphan, or it went on to its own CREATE DATABASE.
            waiting = _poll(
                "the next apply to wait or to create the database itself",
                lambda: _backends(stage, WAITING_FOR_WORK, (WORK_LOCK_KEY,)) or _backends(stage, CREATING, (orphan,)),
            )
            assert _backends(stage, CREATING, (orphan,)) == [], "it planned while the killed one's statement ran"
            assert waiting
        # The template is free: the orphan's CREATE DATABASE ends, and so does its backend.
        nextone.join(120)
    assert not nextone.is_alive()
    assert len(results) == 1 and isinstance(results[0], ApplyResult), results
    assert stage.plan().empty
    assert stage.sql("SELECT result FROM apply_runs ORDER BY id", dbname="nextmavens") == [("interrupted",), ("ok",)]


def test_two_applies_at_once_are_serialized(stage: Stage) -> None:
    _write_three(stage)
    manifests = load_manifests(stage.projects)
    holding = threading.Event()
    release = threading.Event()

    def slow_confirm(_plan: object) -> bool:
        holding.set()
        release.wait(30)
        return True

    first_result: list[object] = []
    first = threading.Thread(target=lambda: first_result.append(stage.engine().apply(manifests, confirm=slow_confirm)))
    first.start()
    assert holding.wait(30)
    # A second apply with a short timeout gives up with a clear message naming the holder...
    started = time.monotonic()
    with pytest.raises(LockTimeout, match=r"another apply is running \(server pid \d+"):
        stage.engine(lock_timeout_s=0.5).apply(manifests)
    assert 0.4 < time.monotonic() - started < 10
    # ...and the CLI says so too, exiting 1.
    blocked = stage.cli("apply", "--yes", "--lock-timeout", "0.5")
    assert blocked.returncode == 1 and "another apply is running" in blocked.stderr
    # One with time to wait runs after the first, and finds nothing left to do.
    second_result: list[object] = []
    second = threading.Thread(target=lambda: second_result.append(stage.engine(lock_timeout_s=30).apply(manifests)))
    second.start()
    time.sleep(0.5)
    assert second.is_alive(), "the second apply did not wait for the first"
    release.set()
    first.join(60)
    second.join(60)
    assert first_result and second_result
    assert first_result[0].plan.changes  # type: ignore[attr-defined]
    assert second_result[0].plan.empty  # type: ignore[attr-defined]
    _assert_converged_and_usable(stage)


HOSTILE = {
    "quotes.yaml": "ref: quotes'\nname: x\nauth: {site_url: 'https://x.example'}\n",
    "semi.yaml": "ref: semi\nname: x\nauth: {site_url: 'https://x.example'}\ndatabase: {schemas: ['a; DROP ROLE x']}\n",
    "lookalike.yaml": "ref: lооkalike\nname: x\nauth: {site_url: 'https://x.example'}\n",
    "types.yaml": "ref: types\nname: x\nauth: {site_url: 'https://x.example'}\nstate: 1\n",
}


def test_hostile_manifests_are_rejected_and_no_sql_runs(stage: Stage) -> None:
    write_project(stage.projects, "acme", "fine")
    for filename, text in HOSTILE.items():
        write_raw(stage.projects, "evil", filename, text)
    write_project(stage.projects, "globex", "fine")  # duplicate across orgs
    before = stage.sql("SELECT (SELECT count(*) FROM pg_roles), (SELECT count(*) FROM pg_database)")
    for command in (("plan",), ("apply", "--yes")):
        result = stage.cli(*command)
        assert result.returncode == 1
        assert "nothing was applied" in result.stderr
        for filename in HOSTILE:
            assert f"evil/{filename}:" in result.stderr, filename
        assert "globex/fine.yaml:1: ref: ref 'fine' is already used by" in result.stderr
    assert stage.sql("SELECT (SELECT count(*) FROM pg_roles), (SELECT count(*) FROM pg_database)") == before
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'nextmavens'") == []
