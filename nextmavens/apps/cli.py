"""The host's app commands: `secrets set/list`, `deploy`, `releases`, `rollback`.

Thin: parse, check against the manifests, call the release flow (apps/release.py) or the secret store, print.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nextmavens import ui
from nextmavens.cliparts import (
    Failure,
    connection_options,
    known_project,
    load,
    make_engine,
    projects_option,
    run_engine,
    split_key,
)
from nextmavens.manifest.models import App

SECRET_MAX_BYTES = 64 * 1024


def declared_app(projects_dir: Path, project: str, app: str) -> tuple[str, str, App]:
    """(org, ref, app) of an app declared in the manifests; Failure naming what is missing."""
    org, ref = split_key(project)
    loaded = load(projects_dir).by_key(f"{org}/{ref}")
    if loaded is None:
        raise Failure(f"no manifest for {project!r} in {projects_dir}")
    found = next((a for a in loaded.manifest.apps if a.name == app), None)
    if found is None:
        names = ", ".join(a.name for a in loaded.manifest.apps) or "none"
        raise Failure(f"{project} declares no app {app!r} (apps: {names}); add it under `apps` in {loaded.path}")
    return org, ref, found


def read_secret_value(name: str) -> str:
    """The value from stdin when it is not a terminal (one trailing newline dropped), else a hidden prompt asked
    twice. Never echoed, never an argument (argv shows in `ps` and shell history)."""
    if ui.stdin_is_terminal():
        value = click.prompt(f"Value of {name}", hide_input=True, confirmation_prompt=True, err=True)
    else:
        raw = sys.stdin.buffer.read(SECRET_MAX_BYTES + 1)
        if len(raw) > SECRET_MAX_BYTES:
            raise Failure(f"the value of {name} is larger than {SECRET_MAX_BYTES // 1024} KiB")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Failure(f"the value of {name} is not UTF-8 text") from None
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise Failure(f"the value of {name} is empty; nothing was stored")
    if "\0" in value:
        raise Failure(f"the value of {name} holds a NUL character, which no environment variable can")
    return value


@click.group("secrets")
def secrets() -> None:
    """An app's secrets: sealed in the control database, given to its container as a 0600 file at run time."""


@secrets.command("set")
@click.argument("project", metavar="ORG/REF")
@click.argument("app")
@click.argument("name")
@projects_option
@connection_options
def secrets_set(
    project: str, app: str, name: str, projects_dir: Path, dsn: str | None, master_key: Path, lock_timeout: float
) -> None:
    """Seal NAME's value for APP (read from stdin, or asked for without echo). NAME must be listed in the app's
    `secrets` in the manifest. The next deploy or rollback gives it to the container."""
    _, _, declared = declared_app(projects_dir, project, app)
    if name not in declared.secrets:
        raise Failure(f"{name!r} is not in the `secrets` of app {app!r} in {project}; declare it there first")
    value = read_secret_value(name)
    engine = make_engine(dsn, master_key, lock_timeout)
    change = {"project": project, "action": "set", "kind": "app secret", "target": f"{app}/{name}"}

    def store() -> None:
        with engine.changing("secrets set", [change]) as (_, sealed):
            ref = known_project(sealed, project)
            sealed.set_app_secret(ref, app, name, value)

    run_engine(store)
    ui.out.print(f"{project} {app}: {name} sealed; it reaches the app at its next deploy or rollback.")


@secrets.command("list")
@click.argument("project", metavar="ORG/REF")
@click.argument("app")
@projects_option
@connection_options
def secrets_list(
    project: str, app: str, projects_dir: Path, dsn: str | None, master_key: Path, lock_timeout: float
) -> None:
    """The app's declared secrets and whether each has a value (never the values)."""
    _, _, declared = declared_app(projects_dir, project, app)
    engine = make_engine(dsn, master_key, lock_timeout)

    def names() -> list[str]:
        with engine.secrets() as sealed:
            ref = known_project(sealed, project)
            return sealed.app_secret_names(ref, app)

    stored = set(run_engine(names))
    for name in declared.secrets:
        click.echo(f"{name}\t{'set' if name in stored else 'missing'}")
    for name in sorted(stored - set(declared.secrets)):
        click.echo(f"{name}\tset (no longer declared)")

APP_COMMANDS = (secrets,)
