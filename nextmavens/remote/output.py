"""How the developer commands speak: with --json, JSON only on stdout; every message on stderr; colour only on a
terminal and never when NO_COLOR is set; one exception per expected failure, with a documented exit code.

Exit codes of the developer commands (login, logout, whoami, projects, project, link, create-project, and the
commands built on this module):
  0  done
  1  the service refused or failed the request, or the input is invalid (the message says why)
  2  wrong usage (an unknown option, a missing argument)
  3  not logged in, or the token is invalid, expired or revoked: run `nextmavens login`
  4  the service cannot be reached (connection refused, name not resolved, TLS, timeout)
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

import click

from nextmavens.remote.api import RemoteError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOGIN, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


def colour() -> bool | None:
    """click's `color`: None lets it colour a terminal only; NO_COLOR (any non-empty value) turns it off."""
    return False if os.environ.get("NO_COLOR") else None


def printable(text: object) -> str:
    """Text from the service (names, messages) without control characters, so it cannot drive the terminal."""
    return "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in str(text))


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def say(text: str, style: str | None = None) -> None:
    """A message: stderr, coloured only on a terminal."""
    click.echo(click.style(printable(text), fg=style) if style else printable(text), err=True, color=colour())


def done(text: str) -> None:
    say(text, "green")


def show(text: str) -> None:
    """The human answer of a command without --json: stdout."""
    click.echo(printable(text), color=colour())


class DevFailure(click.ClickException):
    """An expected failure: `error: <message>` on stderr, its exit code, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: IO[Any] | None = None) -> None:
        label = click.style("error:", fg="red")
        click.echo(f"{label} {printable(self.message)}", err=True, color=colour())


def failure_of(error: RemoteError) -> DevFailure:
    if error.status == 401:
        return DevFailure(error.message, EXIT_LOGIN)
    if error.code in ("bad_url", "bad_token"):
        return DevFailure(error.message)
    if error.status == 0:
        return DevFailure(error.message, EXIT_UNREACHABLE)
    return DevFailure(f"{error.message} ({error.code}, HTTP {error.status})")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
