"""Observing the cluster costs the same number of queries for 1 project as for many."""

from __future__ import annotations

import psycopg
import pytest

from nextmavens.manifest.loader import load_manifests
from tests.support.engine import Stage
from tests.support.projects import write_project


def _queries_per_plan(stage: Stage, monkeypatch: pytest.MonkeyPatch, empty: bool = True) -> int:
    calls = 0
    real_execute = psycopg.Connection.execute

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real_execute(self, *args, **kwargs)

    manifests = load_manifests(stage.projects)
    engine = stage.engine()
    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Connection, "execute", counting)
        assert engine.plan(manifests).empty == empty
    return calls


def test_plan_queries_do_not_grow_with_projects(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(stage.projects, "acme", "one")
    stage.apply()
    with_one = _queries_per_plan(stage, monkeypatch)
    for index in range(2, 7):
        write_project(stage.projects, "acme", f"p{index:03d}", database={"schemas": ["app"]})
    stage.apply()
    assert _queries_per_plan(stage, monkeypatch) == with_one
    assert with_one <= 14  # ten observation queries, the lock-free migration check, the master key probe

    # Extension names live in each database's own catalog: a database is read (one more query) only where its
    # manifest's list differs from the recorded one, or the layer owns another number of extensions.
    write_project(stage.projects, "acme", "p002", database={"schemas": ["app"], "extensions": ["uuid-ossp", "pg_trgm"]})
    assert _queries_per_plan(stage, monkeypatch, empty=False) == with_one + 1
    stage.apply()
    assert _queries_per_plan(stage, monkeypatch) == with_one + 1  # pgcrypto is kept: the layer owns 3, not 2
