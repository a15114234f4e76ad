"""The `nextmavens` executable runs the developer commands without loading the engine, and knows them all: the
developer commands always, and db, logs, `whatsapp connect` and their first-plan spellings when they go through
the API (a login present, NEXTMAVENS_DSN unset); on the host's side those go through the whole command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from nextmavens import cli, entry
from nextmavens.devcli import shared_commands
from nextmavens.remote.commands import DEVELOPER_COMMANDS
from nextmavens.remote.credentials import store_login

# Loaded by the engine, the edge, the control database or the manifests; never by a developer command's start.
HEAVY = ("psycopg", "pydantic", "rich", "fastapi", "jinja2", "yaml", "docker", "cryptography")
HOST_MODULES = ("nextmavens.engine", "nextmavens.edge", "nextmavens.control", "nextmavens.manifest")


def test_the_entry_names_every_developer_command_and_the_whole_cli_lists_them() -> None:
    names = {command.name for command in DEVELOPER_COMMANDS}
    assert entry.developer_command_names() == names
    assert names <= set(cli.main.commands)


def test_the_entry_names_every_shared_command_and_both_groups_hold_the_same_ones() -> None:
    shared = shared_commands(click.Group("whatsapp"))
    assert entry.shared_command_names() == set(shared)
    whole = cli.main.commands
    fast = entry.developer_group().commands
    for name, command in shared.items():
        assert whole[name].name == command.name and fast[name].name == command.name
    assert set(fast) == entry.developer_command_names() | entry.shared_command_names()
    # Only `connect` of the host's whatsapp commands is shared; the others stay with the whole command line.
    assert set(fast["whatsapp"].commands) == {"connect"}  # type: ignore[attr-defined]
    assert {"connect", "show", "send", "delete"} <= set(whole["whatsapp"].commands)  # type: ignore[attr-defined]
    assert whole["db:migrate"].hidden and fast["whatsapp-connect"].hidden


@pytest.fixture
def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(config))
    store_login("http://127.0.0.1:9", "nmp_" + "x" * 43)
    return config


@pytest.mark.parametrize(
    ("argv", "fast"),
    [
        (["db", "migrate"], True),
        (["db:migrate"], True),
        (["logs", "--follow"], True),
        (["whatsapp", "connect", "orders"], True),
        (["whatsapp-connect", "orders"], True),
        (["whatsapp", "show", "acme/shop"], False),  # the host's
        (["whatsapp"], False),
        (["whatsapp", "--help"], False),
        (["apply"], False),
        ([], False),
    ],
)
def test_shared_commands_start_fast_only_through_the_api(
    logged_in: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], fast: bool
) -> None:
    assert entry.fast(["nextmavens", *argv]) is fast
    monkeypatch.setenv("NEXTMAVENS_DSN", "dbname=x")  # the host's side: through the whole command line
    assert entry.fast(["nextmavens", *argv]) is False


def test_without_a_login_shared_commands_take_the_whole_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not entry.fast(["nextmavens", "db", "migrate"])
    assert entry.fast(["nextmavens", "projects"])  # a developer command says "not logged in" itself
    monkeypatch.setenv("NEXTMAVENS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("NEXTMAVENS_TOKEN", "nmp_x")
    assert entry.fast(["nextmavens", "logs"])


def loaded_at_start(argv: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
    """A fresh interpreter runs the executable's entry with `argv`: (its stdout, the heavy modules it loaded)."""
    probe = (
        "import json, sys\n"
        f"sys.argv = ['nextmavens', *{argv!r}]\n"
        "from nextmavens import entry\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
        f" or m.startswith({HOST_MODULES!r}) or m in ('nextmavens.cli', 'nextmavens.cliparts'))\n"
        "print(json.dumps(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    *out, last = done.stdout.strip().splitlines()
    return "\n".join(out), json.loads(last)


@pytest.mark.parametrize(
    ("argv", "shows"),
    [
        (["projects", "--help"], "The projects your login sees"),
        (["db", "migrations", "--help"], "List the migrations"),
        (["db", "migrate", "--help"], "--include-all"),
        (["db:migrate", "--help"], "--include-all"),
        (["logs", "--help"], "--follow"),
        (["whatsapp", "connect", "--help"], "Pair a phone"),
        (["whatsapp-connect", "--help"], "Pair a phone"),
    ],
)
def test_a_developer_command_starts_without_the_engine_or_a_database_driver(
    tmp_path: Path, argv: list[str], shows: str
) -> None:
    env = {"NEXTMAVENS_URL": "http://127.0.0.1:9", "NEXTMAVENS_TOKEN": "nmp_x", "NEXTMAVENS_CONFIG_DIR": str(tmp_path)}
    shown, heavy = loaded_at_start(argv, env)
    assert shows in shown
    assert heavy == []


def test_a_shared_command_runs_a_whole_fast_start_through_the_api_without_heavy_modules(tmp_path: Path) -> None:
    """Not only --help: `db migrations` reads the folder, the link and the login and calls the API (refused here:
    nothing answers), with nothing heavy loaded; on the host's side the same command loads the whole CLI."""
    (tmp_path / ".nextmavens").mkdir()
    (tmp_path / ".nextmavens" / "project").write_text("acme/shop\n")
    (tmp_path / "supabase" / "migrations").mkdir(parents=True)
    (tmp_path / "supabase" / "migrations" / "20250101000000_one.sql").write_text("select 1")
    env = {"NEXTMAVENS_URL": "http://127.0.0.1:9", "NEXTMAVENS_TOKEN": "nmp_x", "NEXTMAVENS_CONFIG_DIR": str(tmp_path)}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        _, heavy = loaded_at_start(["db", "migrations", "--json"], env)
        _, host = loaded_at_start(["db", "migrations", "--json"], {**env, "NEXTMAVENS_DSN": "dbname=x"})
    finally:
        os.chdir(cwd)
    assert heavy == []
    assert "nextmavens.cli" in host and "psycopg" in host
