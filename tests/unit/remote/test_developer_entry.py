"""The `nextmavens` executable runs the developer commands without loading the engine, and knows them all."""

from __future__ import annotations

import subprocess
import sys

from nextmavens import cli, entry
from nextmavens.remote.commands import DEVELOPER_COMMANDS


def test_the_entry_names_every_developer_command_and_the_whole_cli_lists_them() -> None:
    names = {command.name for command in DEVELOPER_COMMANDS}
    assert entry.developer_command_names() == names
    assert names <= set(cli.main.commands)


def test_a_developer_command_starts_without_the_engine_or_a_database_driver() -> None:
    probe = (
        "import sys; sys.argv = ['nextmavens', 'projects', '--help']\n"
        "from nextmavens import entry\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'pydantic', 'rich', 'fastapi')"
        " or m.startswith(('nextmavens.engine', 'nextmavens.edge', 'nextmavens.cli'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "The projects your login sees" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
