"""`nextmavens plan` starts without the edge's modules, and still reports the edge's failures plainly."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from nextmavens import cli


def test_cli_start_does_not_import_the_edge() -> None:
    # A fresh interpreter: what importing the CLI (every command's start-up) loads.
    probe = "import sys, nextmavens.cli; print(sorted(m for m in sys.modules if m.startswith('nextmavens.edge')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [
        ("nextmavens.edge.apply", "EdgeRefused", ["the edge said no"]),
        ("nextmavens.edge.settingsfile", "EdgeConfigError", "the edge said no"),
    ],
)
def test_edge_failures_still_become_clear_messages(module: str, name: str, argument: object) -> None:
    error = getattr(__import__(module, fromlist=[name]), name)

    def fail() -> None:
        raise error(argument)

    with pytest.raises(click.ClickException, match="the edge said no"):
        cli.run_engine(fail)
