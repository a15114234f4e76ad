"""Shared fixtures: one throwaway PostgreSQL server per test session (real, on a free loopback port)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nextmavens.localdb import LocalPostgres


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    base = Path(tempfile.mkdtemp(prefix="nextmavens-pg-", dir="/tmp"))
    base.chmod(0o711)
    server = LocalPostgres(base / "server", fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def master_key_path(tmp_path: Path) -> Path:
    return tmp_path / "master.key"


@pytest.fixture(autouse=True)
def _no_inherited_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set what they need; an operator's environment must never leak into them."""
    for name in list(os.environ):
        if name.startswith("NEXTMAVENS_"):
            monkeypatch.delenv(name)
