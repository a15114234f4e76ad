"""The `nextmavens` command line. Thin: parse, call the engine, print."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.markup import escape

from nextmavens import gitrepo, ui
from nextmavens.cliparts import (
    DEFAULT_DUMP_DIR,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
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
from nextmavens.control.locks import LockTimeout
from nextmavens.engine.destroy import DestroyResult, destroy_project
from nextmavens.engine.plan import Change, Plan, PlanError
from nextmavens.engine.session import ApplyResult, NotApplied
from nextmavens.keys import expiry_warning
from nextmavens.manifest.loader import ManifestErrors, load_manifests
from nextmavens.naming import evolution_instance_name
from nextmavens.whatsapp.removal import LEAVE_FLAG, instances_before_destroy, remove_project_instances

if TYPE_CHECKING:
    # The edge's modules (jinja2, certificates, Kong and nginx rendering, their settings models) and the key
    # view are imported by the commands that use them: `plan` and `validate` start faster without them.
    from nextmavens.containerlogs import LogTarget
    from nextmavens.edge.step import ReadyEdge


@click.group()
@click.version_option(package_name="nextmavens")
def main() -> None:
    """Many self-hosted Supabase projects on one host, described as code."""


@main.command()
@projects_option
def validate(projects_dir: Path) -> None:
    """Check every manifest; print each problem with file, line and field."""
    manifests = load(projects_dir)
    ui.out.print(f"{len(manifests.projects)} project(s) in {len(manifests.orgs)} org(s): all valid.")


@main.command()
@projects_option
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(projects_dir: Path, dsn: str | None, master_key: Path, lock_timeout: float, as_json: bool) -> None:
    """Show what apply would change. Exit 0: nothing; 2: changes pending; 1: error."""
    manifests = load(projects_dir)
    engine = make_engine(dsn, master_key, lock_timeout)
    result: Plan = run_engine(lambda: engine.plan(manifests))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        ui.print_plan(result)
    if result.errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if result.changes else EXIT_OK)


@main.command()
@projects_option
@connection_options
@edge_option
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the applied changes as JSON.")
def apply(
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Converge the cluster to the manifests (never drops anything), then the edge when configured."""
    # Read before the files: the run records the commit (and whether files differed from it) it applies.
    revision = gitrepo.revision(projects_dir)
    if as_json:
        try:
            manifests = load_manifests(projects_dir)
        except ManifestErrors as exc:
            json_failure("manifests", [str(error) for error in exc.errors])
    else:
        manifests = load(projects_dir)
    engine = make_engine(dsn, master_key, lock_timeout)
    if not yes and not ui.stdin_is_terminal():
        raise Failure("apply asks for confirmation; pass --yes when not at a terminal")
    ready: ReadyEdge | None = None
    if edge_config is not None:
        from nextmavens.edge.step import ready_edge

        try:
            ready = ready_edge(edge_config, manifests, "nothing was applied")
        except Failure as exc:
            if as_json:
                json_failure("edge", [line.strip() for line in exc.message.splitlines()])
            raise

    def confirm(pending: Plan) -> bool:
        if not as_json:
            ui.print_plan(pending)
        return yes or click.confirm(f"Apply {len(pending.changes)} change(s)?", default=False)

    def progress(change: Change) -> None:
        if not as_json:
            ui.say(f"  {change.project}: {change.kind} {change.target}: {change.detail}")

    def attempt() -> ApplyResult | None:
        try:
            return engine.apply(manifests, confirm=confirm, on_change=progress, revision=revision)
        except (LockTimeout, PlanError) as exc:
            if as_json:  # typed for a caller that parses the answer (the platform service's privileged apply)
                json_failure("busy" if isinstance(exc, LockTimeout) else "plan", str(exc).splitlines())
            raise

    result = run_engine(attempt)
    if result is None:
        ui.out.print("Nothing applied.")
        sys.exit(EXIT_ERROR)
    report = None
    if ready is not None:
        from nextmavens.apps.reconcile import host_apps
        from nextmavens.edge.step import edge_step

        report = edge_step(engine, ready, apps=host_apps(ready.host))
    if as_json:
        document: dict[str, Any] = {"run": result.run_id, "result": "ok", **result.plan.as_json()}
        if report is not None:
            document["edge"] = {"done": report.done, "warnings": report.warnings, "errors": report.errors}
        click.echo(json.dumps(document, indent=2))
    else:
        if result.plan.empty:
            ui.print_plan(result.plan)
        else:
            ui.out.print(f"[green]Applied {len(result.plan.changes)} change(s)[/] (run {result.run_id}).")
        if report is not None:
            from nextmavens.edge.step import print_edge_report

            print_edge_report(report)
    if report is not None and report.errors:
        sys.exit(EXIT_ERROR)


def json_failure(kind: str, problems: list[str]) -> NoReturn:
    """`apply --json`'s answer to an expected failure, exit 1: {"result": "failed", "error": {"kind", "problems"}}
    with kind `manifests` (the set is invalid), `edge` (the edge cannot serve it: names, memory, its settings),
    `busy` (another apply holds the lock) or `plan` (the server cannot reach the desired state). Nothing was applied
    in any of them."""
    click.echo(json.dumps({"result": "failed", "error": {"kind": kind, "problems": problems}}, indent=2))
    sys.exit(EXIT_ERROR)


@main.group()
def keys() -> None:
    """Show or rotate a project's API keys and connection strings."""


@keys.command("show")
@click.argument("project")
@connection_options
@edge_option
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--api-domain",
    envvar="NEXTMAVENS_API_DOMAIN",
    default=None,
    help="Platform API domain for the project URL [env NEXTMAVENS_API_DOMAIN].",
)
def keys_show(
    project: str,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
    as_json: bool,
    api_domain: str | None,
) -> None:
    """Print the project's URL, keys and connection strings (this prints secrets, on purpose)."""
    from nextmavens.keysview import project_access

    engine = make_engine(dsn, master_key, lock_timeout)

    def read() -> tuple[dict[str, str], int]:
        with engine.secrets() as store:
            ref = known_project(store, project)
            secrets = store.project_secrets(ref)
        if secrets is None:
            raise Failure(f"{project} has no keys yet; run apply first")
        edge_settings = None
        if edge_config is not None:
            from nextmavens.edge.step import load_edge

            edge_settings = load_edge(edge_config).settings
        access = project_access(ref, secrets, engine.config.dsn, api_domain, edge_settings)
        return access, secrets.keys.expires_at

    access, expires_at = run_engine(read)
    warning = expiry_warning(expires_at, int(time.time()))
    if warning:
        ui.err.print(f"[yellow]warning[/]: {project}: {warning}", soft_wrap=True)
    if as_json:
        click.echo(json.dumps(access, indent=2))
        return
    for label, value in access.items():
        ui.out.print(f"[bold]{label}[/]: {value}", soft_wrap=True)


@keys.command("rotate")
@click.argument("project")
@projects_option
@connection_options
@edge_option
def keys_rotate(
    project: str, projects_dir: Path, dsn: str | None, master_key: Path, lock_timeout: float, edge_config: Path | None
) -> None:
    """Issue a new JWT secret and keys, then converge the edge (containers, Kong, tenants) to them.

    The old keys stop working only when the edge holds the new secret: with --edge-config the command
    succeeds only then; without it, it says the edge was not converged."""
    from nextmavens.keysview import iso_time

    engine = make_engine(dsn, master_key, lock_timeout)
    org, ref = split_key(project)
    ready: ReadyEdge | None = None
    if edge_config is not None:
        from nextmavens.edge.step import ready_for_rotate

        ready = ready_for_rotate(edge_config, projects_dir, ref)

    def rotate() -> tuple[int, int]:
        try:
            keys = engine.rotate_keys(org, ref)
        except NotApplied:
            raise Failure(f"no applied project {project!r} (apply it first, or check the name)") from None
        return keys.issued_at, keys.expires_at

    issued, expires = run_engine(rotate)
    stored = f"New keys for {project} are issued (at {issued}, valid until {iso_time(expires)}) and stored"
    if ready is None:
        from nextmavens.edge.step import rotated_without_edge

        ui.out.print(f"{stored}; the old keys are recorded as revoked.")
        ui.err.print(f"[yellow]warning[/]: {rotated_without_edge()}", soft_wrap=True)
        return
    from nextmavens.apps.reconcile import host_apps
    from nextmavens.edge.step import apply_again, edge_step_or_fail

    done = f"{stored} (the old keys are recorded as revoked; the edge may still accept them)"
    edge_step_or_fail(engine, ready, done, apply_again(ready), apps=host_apps(ready.host))
    ui.out.print(
        f"{stored}; the edge now serves them, and the old keys are revoked. "
        f"Show them with: nextmavens keys show {project}"
    )


@main.command()
@click.argument("project")
@click.option("--confirm", "confirmation", required=True, help="Repeat ORG/PROJECT to confirm.")
@projects_option
@connection_options
@click.option(
    "--dump-dir",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_DUMP_DIR",
    default=DEFAULT_DUMP_DIR,
    show_default=True,
    help="Where the final pg_dump is written before anything is dropped.",
)
@edge_option
@click.option(
    "--leave-whatsapp",
    is_flag=True,
    help="Leave the project's WhatsApp instances in Evolution (paired, managed by nothing) instead of deleting them.",
)
def destroy(
    project: str,
    confirmation: str,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    dump_dir: Path,
    edge_config: Path | None,
    leave_whatsapp: bool,
) -> None:
    """Block a project, write a fresh pg_dump, drop its database and roles, log out and delete its WhatsApp
    instances in Evolution; with the edge, remove its containers (volumes kept), compose and env files, tenants,
    Kong consumers and nginx vhost."""
    if confirmation != project:
        raise Failure(f"--confirm must repeat the project exactly ({project!r}); nothing was dropped")
    org, ref = split_key(project)
    manifests = load(projects_dir)
    declared = manifests.by_ref(ref)
    if declared is not None and declared.manifest.state != "absent":
        raise Failure(
            f"{declared.path} still declares {ref!r} as {declared.manifest.state}; set state: absent "
            "or delete the manifest first, or the next apply would create it again"
        )
    engine = make_engine(dsn, master_key, lock_timeout)
    ready: ReadyEdge | None = None
    if edge_config is not None:
        from nextmavens.edge.step import ready_edge

        ready = ready_edge(edge_config, manifests, "nothing was dropped")

    def sealed_whatsapp() -> list[str]:
        with engine.secrets() as store:
            return store.whatsapp_instances(ref)

    sealed = run_engine(sealed_whatsapp)
    api = None
    if sealed and not leave_whatsapp and ready is not None:
        from nextmavens.edge.hostruntime import evolution_api

        api = evolution_api(ready.host)
    instances = [] if leave_whatsapp else instances_before_destroy(api, project, ref, sealed)
    detail = [{"project": project, "action": "destroy", "kind": "project"}]
    detail += [{"project": project, "action": "delete", "kind": "whatsapp", "target": name} for name in instances]

    def drop() -> Any:
        with engine.changing("destroy", detail) as (cluster, store):
            known_project(store, project)  # under the lock: nobody renames or destroys it meanwhile
            result = destroy_project(cluster, engine.config.dsn, ref, dump_dir)
            # After the drop (a failed dump leaves the phone sessions paired); the secrets stay until Evolution
            # answered, so a destroy run again after an Evolution failure finds the project and finishes.
            done = [] if api is None else remove_project_instances(api, instances, destroyed_line(project, result))
            store.forget_project(ref)
            return result, done

    result, removed = run_engine(drop)
    if result.dump_path:
        ui.out.print(f"Dump written: {result.dump_path}")
    dropped = destroyed_line(project, result)
    ui.out.print(f"{dropped}.")
    if removed:
        ui.out.print("WhatsApp: " + "; ".join(escape(line) for line in removed) + ".", soft_wrap=True)
    if leave_whatsapp and sealed:
        left = ", ".join(evolution_instance_name(ref, name) for name in sealed)
        ui.err.print(
            f"[yellow]warning[/]: WhatsApp instances left in Evolution ({LEAVE_FLAG}), their secrets forgotten: "
            f"{escape(left)}; remove them with Evolution's own API",
            soft_wrap=True,
        )
    if ready is None:
        from nextmavens.edge.step import destroyed_without_edge

        ui.err.print(f"[yellow]warning[/]: {destroyed_without_edge(ref)}", soft_wrap=True)
        return
    from nextmavens.apps.reconcile import host_apps
    from nextmavens.edge.step import after_failed_destroy, edge_step_or_fail

    edge_step_or_fail(
        engine, ready, dropped, after_failed_destroy(ready, ref), removed=ref, apps=host_apps(ready.host)
    )
    ui.out.print(f"Removed {project} from the edge (its storage files and volumes are kept).")


def destroyed_line(project: str, result: DestroyResult) -> str:
    return (
        f"Destroyed {project}: database {'dropped' if result.dropped_database else 'was already gone'}, "
        f"roles dropped: {', '.join(result.dropped_roles) or 'none'}"
    )


@main.command("container-logs")
@click.argument("project")
@click.argument("service")
@click.option("--since", default=None, help="10m, 2h, 1d or an RFC 3339 time.")
@click.option("--follow", is_flag=True, help="Keep printing new lines until stopped.")
def container_logs(project: str, service: str, since: str | None, follow: bool) -> None:
    """Print a project's service log (rest, auth, storage, or app:<name>: the app's active release) with timestamps,
    as `docker logs` does.

    The platform service runs this as root through sudo with a request's arguments, so it takes no option but
    these: the manifests and the control database are the ones NEXTMAVENS_PROJECTS and NEXTMAVENS_DSN name (the
    host's wrapper sets them), and it reads only the container of a declared and applied project's service."""
    import os
    from datetime import UTC, datetime

    from nextmavens.containerlogs import LogsRefused, docker_logs_argv, log_target, parse_since, split_project
    from nextmavens.control.db import connect_control
    from nextmavens.control.store import access
    from nextmavens.dockerenv import docker_environment

    dsn = os.environ.get("NEXTMAVENS_DSN")
    if not dsn:
        raise Failure("no database connection: set NEXTMAVENS_DSN")
    try:
        org, ref = split_project(project)
        cutoff = None if since is None else parse_since(since, datetime.now(UTC))
        declared = load(Path(os.environ.get("NEXTMAVENS_PROJECTS", "projects"))).by_key(f"{org}/{ref}")

        def applied() -> bool:
            with connect_control(dsn) as conn:
                return any((p.org, p.ref) == (org, ref) for p in access.applied_projects(conn))

        target = log_target(org, ref, service, declared.manifest if declared else None, run_engine(applied))
        if target.app is not None:
            target = active_app_release(target)
        argv = docker_logs_argv(target, cutoff, follow)
    except LogsRefused as exc:
        raise Failure(str(exc)) from None
    sys.stdout.flush()
    # Replaced by docker itself: a signal to this process (sudo relays the caller's) reaches docker directly.
    os.execvpe(argv[0], argv, docker_environment())  # noqa: S606 - argv built from checked values only


def active_app_release(target: LogTarget) -> LogTarget:
    """An app's log target with its active release, as the app's state on the host names it (the edge settings
    file, NEXTMAVENS_EDGE_CONFIG, says where that state lives)."""
    import dataclasses
    import os

    from nextmavens.apps.release import AppState
    from nextmavens.edge.step import load_edge

    config = os.environ.get("NEXTMAVENS_EDGE_CONFIG")
    apps = load_edge(Path(config)).config.apps if config else None
    if apps is None or target.app is None:
        raise Failure("app logs are read on the host: NEXTMAVENS_EDGE_CONFIG names its app settings")
    state = AppState.load(apps.state_dir / target.ref / target.app / "state.json")
    return dataclasses.replace(target, release=state.active)


def register_optional_commands() -> None:
    """Commands that live beside the engine: schema export, backups, monitoring, doctor, the developer commands
    (through the platform API); then those other installed distributions add (a development install's sandbox
    and local database)."""
    from nextmavens.apps.cli import APP_COMMANDS
    from nextmavens.backup.cli import backup
    from nextmavens.commandplugins import add_plugin_commands
    from nextmavens.devcli import shared_commands
    from nextmavens.devcli.deploy import deploy
    from nextmavens.devcli.email import email
    from nextmavens.doctor.cli import doctor
    from nextmavens.manifest.schema import schema_command
    from nextmavens.mcp.cli import mcp
    from nextmavens.media.cli import media
    from nextmavens.metrics.cli import metrics
    from nextmavens.metrics.domainscli import domains
    from nextmavens.metrics.uptimecli import uptime_command
    from nextmavens.monitor.cli import monitor, status
    from nextmavens.platform.cli import platform_commands
    from nextmavens.remote.commands import DEVELOPER_COMMANDS
    from nextmavens.studiocli import studio
    from nextmavens.whatsapp.cli import whatsapp

    monitor.add_command(uptime_command)  # uptime lives with the metrics, above the monitor group
    for command in (
        *(schema_command, backup, monitor, status, doctor, mcp, email, media, metrics, domains, deploy, studio),
        *platform_commands,
        *APP_COMMANDS,
        *DEVELOPER_COMMANDS,
    ):
        main.add_command(command)
    # db, logs, whatsapp (with connect), and the first plan's spellings db:migrate and whatsapp-connect (hidden)
    for name, command in shared_commands(whatsapp).items():
        main.add_command(command, name)
    add_plugin_commands(main)


register_optional_commands()

if __name__ == "__main__":
    main()
