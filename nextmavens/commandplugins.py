"""Command groups other installed distributions add to `nextmavens`, from the entry-point group below.

A development install adds the workshop's this way (`nextmavens sandbox`, `nextmavens localdb`); the product
names none of them. A plugin that cannot be loaded stays listed, and running it fails with one line naming
the entry point and the reason; the product's own commands keep working and cannot be replaced by a plugin.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import click

GROUP = "nextmavens.commands"


def add_plugin_commands(main: click.Group, found: Iterable[EntryPoint] | None = None) -> None:
    for entry in sorted(entry_points(group=GROUP) if found is None else found, key=lambda e: e.name):
        if entry.name in main.commands:
            continue
        try:
            command = entry.load()
        except Exception as exc:  # any failure of a plugin's import: reported when it is run, not here
            command = _unavailable(entry, f"{type(exc).__name__}: {exc}")
        else:
            if not isinstance(command, click.Command):
                command = _unavailable(entry, f"{type(command).__name__} is not a click command")
        main.add_command(command, entry.name)


def _unavailable(entry: EntryPoint, reason: str) -> click.Command:
    # one line even when the reason spans several (a SyntaxError's, say)
    problem = " ".join(f"the {entry.name!r} command could not be loaded from {entry.value} ({GROUP}): {reason}".split())

    def fail(args: tuple[str, ...]) -> None:
        raise click.ClickException(problem)

    return click.Command(
        entry.name,
        callback=fail,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=f"Unavailable: {problem}",
        add_help_option=False,
    )
