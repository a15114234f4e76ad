"""The host's app commands: `secrets set/list`, `deploy`, `releases`, `rollback`.

Thin: parse, check against the manifests, call the release flow (apps/release.py) or the secret store, print.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nextmavens import ui
from nextmavens.cliparts import (
    Failure,
    connection_options,
    edge_option,
    known_project,
    load,
    make_engine,
    projects_option,
    run_engine,
    split_key,
)
from nextmavens.manifest.models import App

if TYPE_CHECKING:
    from nextmavens.apps.release import Context, Outcome, Target

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


# ---------------------------------------------------------------- deploy, releases, rollback (on the host)


def release_context(edge_config: Path | None, say: Callable[[str], None]) -> Context:
    """The release flow's context from the host's edge settings file (NEXTMAVENS_EDGE_CONFIG) and docker."""
    from nextmavens.apps.dockerops import SdkDocker
    from nextmavens.apps.reconcile import host_context
    from nextmavens.edge.step import load_edge

    if edge_config is None:
        raise Failure("app deployments run on the host: set NEXTMAVENS_EDGE_CONFIG or pass --edge-config")
    host = load_edge(edge_config)
    if host.config.apps is None:
        raise Failure(f"{edge_config} has no `apps` settings (written by an older deploy): deploy the host first")
    try:
        docker = SdkDocker.from_env()
    except Exception as exc:
        raise Failure(f"cannot reach Docker: {type(exc).__name__}: {exc}") from None
    return host_context(host, docker, say)


def app_secret_values(dsn: str | None, master_key: Path, lock_timeout: float, project: str, app: App) -> dict[str, str]:
    """The sealed values of the app's declared secrets (none asked for when it declares none)."""
    if not app.secrets:
        return {}
    engine = make_engine(dsn, master_key, lock_timeout)

    def read() -> dict[str, str]:
        with engine.secrets() as sealed:
            ref = known_project(sealed, project)
            return sealed.app_secrets(ref, app.name, app.secrets)

    values: dict[str, str] = run_engine(read)
    return values


MAX_ARCHIVE_BYTES = 50 * 1024 * 1024  # the service's bound on an upload (ServiceSettings.deploy_max_body_bytes)


def read_archive(archive: Path) -> bytes:
    """The archive's bytes, at most MAX_ARCHIVE_BYTES (a pipe or /dev/fd/N as much as a file)."""
    try:
        with archive.open("rb") as handle:
            data = handle.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as exc:
        raise Failure(f"cannot read the archive {archive}: {exc.strerror or exc}") from None
    if len(data) > MAX_ARCHIVE_BYTES:
        raise Failure(f"the archive is larger than {MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB")
    return data


def host_deploy(
    project: str,
    app: str,
    gitref: str | None,
    archive: Path | None,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
    say: Callable[[str], None] = click.echo,
    preview: str | None = None,
) -> Outcome:
    """Build APP's declared source (or `archive`, a `git archive` tar, for an app whose source is `upload`) and
    release it, or run it as preview `preview`."""
    import tempfile

    from nextmavens.apps.release import DeployBusy, Target, app_lock

    org, ref, declared = declared_app(projects_dir, project, app)
    if archive is not None and declared.source != "upload":
        raise Failure(
            f"app {app!r} builds from its declared source ({declared.source}), not an archive; "
            "--archive is for apps whose source is `upload`"
        )
    context = release_context(edge_config, say)
    target = Target(org, ref, declared)
    if preview is not None:
        check_preview(context, projects_dir, target, preview)
    values = app_secret_values(dsn, master_key, lock_timeout, project, declared)
    # The app's lock before the source is read or unpacked: a second deploy of the app waits (or is refused)
    # before it takes memory or disk.
    try:
        with app_lock(context, target), tempfile.TemporaryDirectory(prefix="nextmavens-build-") as scratch:
            return _build_and_release(context, target, gitref, archive, scratch, values, preview, project)
    except DeployBusy as exc:
        raise Failure(str(exc)) from None


def _build_and_release(
    context: Context,
    target: Target,
    gitref: str | None,
    archive: Path | None,
    scratch: str,
    values: dict[str, str],
    preview: str | None,
    project: str,
) -> Outcome:
    """Read or unpack the source into `scratch` (the caller holds the app's lock) and release it."""
    from nextmavens.apps import source as sources
    from nextmavens.apps.release import ReleaseFailed, deploy

    app, declared = target.app.name, target.app
    tree = Path(scratch) / "src"
    tree.mkdir()
    try:
        if archive is not None:
            data = read_archive(archive)
            sources.extract_archive(data, tree)
            commit = sources.archive_commit(data)
            del data
        elif declared.source == "upload":
            raise Failure(
                f"app {app!r} is deployed by upload: run `nextmavens deploy` from the developer's linked folder, "
                "or pass --archive FILE (a `git archive` tar)"
            )
        elif declared.source.startswith("/"):
            commit = sources.archive_path(Path(declared.source), gitref, tree)
        else:
            url, _, declared_ref = declared.source.partition("#")
            tree.rmdir()
            commit = sources.clone(url, gitref or declared_ref or None, tree)
    except sources.SourceError as exc:
        raise Failure(f"{project} {app}: {exc}") from None
    try:
        return deploy(context, target, tree, commit, values, preview, locked=True)
    except ReleaseFailed as exc:
        raise Failure(str(exc)) from None


def check_preview(context: Context, projects_dir: Path, target: Target, preview: str) -> None:
    """Before anything builds: a valid name, host names neither the platform's nor any manifest's, and room in
    memory admission (every preview running on the host counted, the one this deploy replaces aside)."""
    from nextmavens.apps.previews import host_conflicts, preview_admission
    from nextmavens.apps.release import ReleaseFailed, check_preview_target
    from nextmavens.apps.releases import LABEL_APP, LABEL_PROJECT

    ref, declared = target.ref, target.app
    try:
        check_preview_target(context, target, preview)  # the release flow's own check, before the source is read
    except ReleaseFailed as exc:
        raise Failure(f"{exc}; nothing was built") from None
    manifests = [p.manifest for p in load(projects_dir).projects]
    taken = host_conflicts(preview, declared.domains, manifests)
    if taken:
        raise Failure(f"preview {preview!r} would serve names a manifest claims: {', '.join(taken)}")
    memory = {(m.ref, a.name): a.memory_mb for m in manifests for a in m.apps}
    undeclared_mb = App.model_fields["memory_mb"].default  # a preview of an app no longer declared: the default
    running = [
        memory.get((r.labels.get(LABEL_PROJECT, ""), r.labels.get(LABEL_APP, "")), undeclared_mb)
        for r in context.docker.previews()
        if (r.labels.get(LABEL_PROJECT), r.labels.get(LABEL_APP), r.preview) != (ref, declared.name, preview)
    ]
    refused = preview_admission(context.edge, manifests, running, declared.memory_mb)
    if refused:
        raise Failure(refused)


def host_remove_preview(project: str, app: str, preview: str, projects_dir: Path, edge_config: Path | None) -> None:
    from nextmavens.apps.release import ReleaseFailed, Target, remove_preview

    org, ref, declared = declared_app(projects_dir, project, app)
    try:
        remove_preview(release_context(edge_config, click.echo), Target(org, ref, declared), preview)
    except ReleaseFailed as exc:
        raise Failure(str(exc)) from None


@click.command("releases")
@click.argument("project", metavar="ORG/REF")
@click.argument("app")
@click.option("--json", "as_json", is_flag=True)
@projects_option
@edge_option
def releases_command(project: str, app: str, as_json: bool, projects_dir: Path, edge_config: Path | None) -> None:
    """(host) The app's retained releases, newest first: number, commit, created, state (active, previous, retained)."""
    import json

    from nextmavens.apps.release import Target, releases_view

    org, ref, declared = declared_app(projects_dir, project, app)
    rows = releases_view(release_context(edge_config, click.echo), Target(org, ref, declared))
    if as_json:
        click.echo(json.dumps({"project": project, "app": app, "releases": rows}, indent=2))
        return
    for row in rows:
        click.echo(f"r{row['release']}\t{str(row['commit'])[:12]}\t{row['created']}\t{row['state']}")


@click.command("rollback")
@click.argument("project", metavar="ORG/REF")
@click.argument("app")
@click.argument("release", type=int, required=False)
@projects_option
@connection_options
@edge_option
def rollback_command(
    project: str,
    app: str,
    release: int | None,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
) -> None:
    """(host) Switch APP back to RELEASE (default: the previous one): its retained container, no build."""
    from nextmavens.apps.release import ReleaseFailed, Target, rollback

    org, ref, declared = declared_app(projects_dir, project, app)
    context = release_context(edge_config, click.echo)
    values = app_secret_values(dsn, master_key, lock_timeout, project, declared)
    try:
        outcome = rollback(context, Target(org, ref, declared), release, values)
    except ReleaseFailed as exc:
        raise Failure(str(exc)) from None
    click.echo(f"rolled back to release {outcome.release} in {outcome.seconds:.1f} s")


APP_COMMANDS = (secrets, releases_command, rollback_command)  # deploy: nextmavens/devcli/deploy.py
