"""The `nextmavens` executable. The developer commands start without the engine, the edge, a PostgreSQL driver or
pydantic: a laptop's `nextmavens projects` loads click and the standard library's HTTP client only.

- login, logout, whoami, projects, project, link, create-project (nextmavens.remote.commands) always start so;
- db, logs, `whatsapp connect` and the first plan's spellings db:migrate and whatsapp-connect
  (nextmavens.devcli.shared_commands) start so when they go through the API (remote/credentials.uses_api: a login
  is present and NEXTMAVENS_DSN is not set); on the host's side they go through the whole command line, as the
  host's other `whatsapp` commands always do;
- every other command, and `--help`, goes through the whole command line (nextmavens.cli), which lists the
  developer commands too.
"""

from __future__ import annotations

import sys

import click

DEVELOPER_MODULE = "nextmavens.remote.commands"
# `whatsapp` is shared only for its `connect`: its other commands are the host's.
SHARED_SUBCOMMANDS = {"whatsapp": "connect"}


def developer_group(shared: bool = True) -> click.Group:
    """The developer commands and (unless `shared` is False: they are not imported then) the shared ones as they
    run through the API, whose `whatsapp` holds `connect` only."""
    from nextmavens.remote.commands import DEVELOPER_COMMANDS

    group = click.Group("nextmavens")
    for command in DEVELOPER_COMMANDS:
        group.add_command(command)
    if not shared:
        return group
    from nextmavens.devcli import shared_commands

    whatsapp = click.Group("whatsapp", help="Pair a phone with a project's WhatsApp instance.")
    for name, command in shared_commands(whatsapp).items():
        group.add_command(command, name)
    return group


def developer_command_names() -> set[str]:
    # Kept here, not imported, so the choice costs nothing; a unit test checks it against DEVELOPER_COMMANDS.
    return {"login", "logout", "whoami", "projects", "project", "link", "create-project"}


def shared_command_names() -> set[str]:
    # As above: a unit test checks it against nextmavens.devcli.shared_commands.
    return {"db", "logs", "whatsapp", "db:migrate", "whatsapp-connect"}


def fast(argv: list[str]) -> bool:
    """Whether the command `argv` names (argv[0] is the program) starts without the whole command line."""
    if len(argv) < 2:
        return False
    name = argv[1]
    if name in developer_command_names():
        return True
    if name not in shared_command_names():
        return False
    if name in SHARED_SUBCOMMANDS and (len(argv) < 3 or argv[2] != SHARED_SUBCOMMANDS[name]):
        return False
    from nextmavens.remote.credentials import uses_api

    return uses_api()


def main() -> None:
    if fast(sys.argv):
        developer_group(shared=sys.argv[1] in shared_command_names())(prog_name="nextmavens")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "mcp":  # an AI tool starts it often: no engine, no edge
        from nextmavens.mcp.cli import mcp

        group = click.Group("nextmavens")
        group.add_command(mcp)
        group(prog_name="nextmavens")
        return
    from nextmavens.cli import main as whole

    whole()
