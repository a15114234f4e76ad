"""Several first applies started at the same moment on a brand-new cluster: every one succeeds."""

from __future__ import annotations

import multiprocessing
import traceback
from typing import Any

from nextmavens.manifest.loader import load_manifests
from tests.support.engine import Stage
from tests.support.projects import write_project

PROCESSES = 8


def _apply(stage: Stage, barrier: Any, results: Any) -> None:
    manifests = load_manifests(stage.projects)
    barrier.wait(timeout=30)
    try:
        stage.engine(lock_timeout_s=120).apply(manifests)
        results.put("ok")
    except Exception:
        results.put(traceback.format_exc())


def test_simultaneous_first_applies_on_a_new_cluster_all_succeed(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [context.Process(target=_apply, args=(stage, barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=240) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [o for o in outcomes if o != "ok"] == []
    assert stage.plan().empty
    # One apply did the work; the others found nothing left to do. The control database is closed to PUBLIC.
    runs = stage.sql("SELECT result, jsonb_array_length(changes) > 0 FROM apply_runs", dbname="nextmavens")
    assert sorted(runs) == [("ok", False)] * (PROCESSES - 1) + [("ok", True)]
    assert stage.sql("SELECT has_database_privilege('public', 'nextmavens', 'CONNECT')") == [(False,)]


def test_a_control_database_left_closed_by_a_killed_first_run_is_finished(stage: Stage) -> None:
    # What a first run killed between creating the control database and opening it leaves behind.
    stage.sql("CREATE DATABASE nextmavens WITH ALLOW_CONNECTIONS false")
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    assert stage.plan().empty
    assert stage.sql("SELECT datallowconn FROM pg_database WHERE datname = 'nextmavens'") == [(True,)]
    assert stage.sql("SELECT has_database_privilege('public', 'nextmavens', 'CONNECT')") == [(False,)]
