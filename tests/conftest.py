"""Shared fixtures: real throwaway PostgreSQL servers on free loopback ports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.localdb.server import LocalPostgres
from tests.support.scratch import cloned_server, scratch_dir


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    """One server for the whole session (tests that share it must not depend on its emptiness)."""
    scratch = scratch_dir("nextmavens-pg-")
    server = LocalPostgres(scratch / "server", fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[LocalPostgres]:
    """An initialised, stopped cluster that fresh_pg copies instead of running initdb each time."""
    scratch = scratch_dir("nextmavens-pgtpl-")
    server = LocalPostgres(scratch / "server", fast=True)
    try:
        server.init()
        yield server
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def fresh_pg(pg_template: LocalPostgres) -> Iterator[LocalPostgres]:
    """A new, empty server for one test."""
    with cloned_server(pg_template, "nextmavens-pgfresh-") as (server, _):
        yield server


@pytest.fixture
def master_key_path(tmp_path: Path) -> Path:
    return tmp_path / "master.key"


@pytest.fixture(autouse=True)
def _no_inherited_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests set what they need; an operator's environment must never leak into them, nor the developer's
    stored login (a command would otherwise go through the API instead of the path under test)."""
    for name in list(os.environ):
        if name.startswith("NEXTMAVENS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(tmp_path_factory.mktemp("no-login")))


@pytest.fixture
def stage(fresh_pg: LocalPostgres, tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.support.engine import Stage

    projects = tmp_path / "projects"
    projects.mkdir()
    return Stage(server=fresh_pg, projects=projects, master_key=tmp_path / "keys" / "master.key")
