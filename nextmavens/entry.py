"""The `nextmavens` executable. The developer commands (nextmavens.remote.commands) start without the engine, the
edge or a PostgreSQL driver: a laptop's `nextmavens projects` loads click and the standard library's HTTP client
only. Every other command, and `--help`, goes through the whole command line (nextmavens.cli), which lists the
developer commands too."""

from __future__ import annotations

import sys

import click

DEVELOPER_MODULE = "nextmavens.remote.commands"


def developer_group() -> click.Group:
    from nextmavens.remote.commands import DEVELOPER_COMMANDS

    group = click.Group("nextmavens")
    for command in DEVELOPER_COMMANDS:
        group.add_command(command)
    return group


def developer_command_names() -> set[str]:
    # Kept here, not imported, so the choice costs nothing; a unit test checks it against DEVELOPER_COMMANDS.
    return {"login", "logout", "whoami", "projects", "project", "link", "create-project"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in developer_command_names():
        developer_group()(prog_name="nextmavens")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "mcp":  # an AI tool starts it often: no engine, no edge
        from nextmavens.mcp.cli import mcp

        group = click.Group("nextmavens")
        group.add_command(mcp)
        group(prog_name="nextmavens")
        return
    from nextmavens.cli import main as whole

    whole()
