"""The developer's commands that work through the platform service's API from a laptop: `db` (new, migrate,
migrations, types) and `logs`; `whatsapp connect` picks the API by the same rule (remote/credentials.uses_api).

They speak as every developer command does (nextmavens/remote/output.py: JSON only on stdout, messages on
stderr, the same exit codes); `logs` adds 130, stopped by Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import copy

import click


def alias(command: click.Command) -> click.Command:
    """The same command under another name, left out of --help."""
    hidden = copy.copy(command)
    hidden.hidden = True
    return hidden


def shared_commands(whatsapp: click.Group) -> dict[str, click.Command]:
    """The commands that exist on both sides, by the name they are called: `db`, `logs`, `whatsapp` (the group
    given, with `connect` added) and the first plan's spellings `db:migrate` and `whatsapp-connect` (hidden).
    The whole command line (nextmavens.cli) adds them beside the host's commands; the developer commands' fast
    start (nextmavens.entry) adds them to its own group when they go through the API."""
    from nextmavens.devcli.db import db, migrate
    from nextmavens.devcli.logs import logs
    from nextmavens.devcli.whatsapp import connect

    whatsapp.add_command(connect)  # it chooses between Evolution on the host and the API: it stands above both
    return {
        "db": db,
        "logs": logs,
        "whatsapp": whatsapp,
        "db:migrate": alias(migrate),
        "whatsapp-connect": alias(connect),
    }
