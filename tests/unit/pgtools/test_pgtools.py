"""pg_dump and pg_restore come from NEXTMAVENS_PG_BIN or PATH, never from a server install the host lacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nextmavens.pgtools import pg_tool


def _program(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_client_on_path_is_found_without_any_server_binaries(tmp_path: Path) -> None:
    # a host whose PostgreSQL runs in a container: pg_dump from postgresql-client, no initdb anywhere
    dump = _program(tmp_path / "bin", "pg_dump")
    assert pg_tool("pg_dump", {"PATH": str(tmp_path / "bin")}) == str(dump)


def test_nextmavens_pg_bin_names_the_folder(tmp_path: Path) -> None:
    env = {"PATH": os.defpath, "NEXTMAVENS_PG_BIN": str(tmp_path / "pg15")}
    assert pg_tool("pg_restore", env) == str(tmp_path / "pg15" / "pg_restore")


def test_a_missing_client_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="install postgresql-client"):
        pg_tool("pg_dump", {"PATH": str(tmp_path)})
