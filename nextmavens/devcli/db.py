"""`nextmavens db new|migrate|migrations`: the local `supabase/migrations` folder, applied through the platform
service's API (GET/POST /v1/projects/{org}/{ref}/migrations), which runs each file with its history row in one
transaction as the project's owner role and records it as the Supabase CLI does. `nextmavens db types`: the
project's TypeScript types (GET .../types/typescript, made by the host's postgres-meta).

The plan is made here first, with the service's own rules (platform/migrationplan.py), so a refusal names the
local files and `--dry-run` needs no write; the service plans again under its lock and decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from nextmavens.migrationfiles import (
    MIGRATIONS_DIR,
    LocalFolder,
    LocalMigration,
    MigrationFileError,
    compare,
    new_file_name,
    read_folder,
)
from nextmavens.platform.migrationplan import Applied, PlanRefused, plan_migrations, split_statements
from nextmavens.remote.api import ApiClient, path_of
from nextmavens.remote.output import DevFailure, emit_json, say, show
from nextmavens.remote.session import api_errors, chosen_project, client_for

PROJECT = click.argument("project", required=False, metavar="[ORG/REF]")


@click.group()
def db() -> None:
    """The project's database migrations (supabase/migrations, as the Supabase CLI lays them out)."""


@db.command("new")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='Print {"path"}.')
def new(name: str, as_json: bool) -> None:
    """Create supabase/migrations/<UTC timestamp>_NAME.sql (empty) and print its path."""
    try:
        file_name = new_file_name(name, datetime.now(UTC))
    except MigrationFileError as exc:
        raise DevFailure(str(exc)) from None
    MIGRATIONS_DIR.mkdir(parents=True, exist_ok=True)
    path = MIGRATIONS_DIR / file_name
    try:
        with path.open("x") as created:  # never over an existing file
            created.write("")
    except FileExistsError:
        raise DevFailure(f"{path} exists already; wait a second and run it again") from None
    if as_json:
        emit_json({"path": str(path)})
    else:
        show(str(path))


def _local() -> LocalFolder:
    try:
        folder = read_folder(MIGRATIONS_DIR)
    except MigrationFileError as exc:
        raise DevFailure(f"{exc}; nothing was applied") from None
    for path in folder.skipped:
        say(f"skipped {path}: not named <timestamp>_<name>.sql")
    return folder


def _history(client: ApiClient, org: str, ref: str) -> list[Applied]:
    answer = client.get(path_of("v1", "projects", org, ref, "migrations"))
    return [Applied(str(row["version"]), str(row.get("name") or "")) for row in answer["migrations"]]


@db.command("migrations")
@PROJECT
@click.option("--json", "as_json", is_flag=True, help='Print {"project", "applied": [...], "pending": [...]}.')
@api_errors
def migrations(project: str | None, as_json: bool) -> None:
    """List the migrations the project's database has applied (and the local file of each) and the local files
    still pending. ORG/REF defaults to the linked project."""
    org, ref = chosen_project(project)
    folder = _local()
    status = compare(folder.migrations, _history(client_for(), org, ref))
    if as_json:
        emit_json({"project": f"{org}/{ref}", **status.as_json()})
        return
    show(f"{org}/{ref}: {len(status.applied)} applied, {len(status.pending)} pending")
    for label, rows in (("applied", status.applied), ("pending", status.pending)):
        for row in rows:
            show(f"  {label:8} {row.version}  {row.name:30} {row.file or '(no local file)'}")


@db.command("migrate")
@PROJECT
@click.option("--dry-run", is_flag=True, help="Say what would be applied; change nothing.")
@click.option(
    "--include-all",
    is_flag=True,
    help="Apply local files older than the last applied one, and despite versions the folder lacks.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"project", "dry_run", "applied", "pending", "failed"} (files as {"version", "name", "file"}).',
)
@api_errors
def migrate(project: str | None, dry_run: bool, include_all: bool, as_json: bool) -> None:
    """Apply the pending files of supabase/migrations in version order, each with its history row in one
    transaction, as the project's owner role. Refused (nothing applied) when the database has versions the
    folder lacks or a pending file is older than the last applied one, unless --include-all. A failing file is
    rolled back with its row and ends the run (exit 1). ORG/REF defaults to the linked project."""
    org, ref = chosen_project(project)
    folder = _local()
    client = client_for()
    local = [item.migration for item in folder.migrations]
    try:
        plan = plan_migrations(local, [row.version for row in _history(client, org, ref)], include_all)
    except PlanRefused as refused:
        raise DevFailure(f"{_refusal(refused, folder.migrations)}; nothing was applied") from None
    files = {item.migration.version: item for item in folder.migrations}
    report: dict[str, Any] = {"project": f"{org}/{ref}", "dry_run": dry_run, "applied": [], "failed": None}
    report["pending"] = [_row(files[m.version]) for m in plan.pending]
    if not plan.pending or dry_run:
        if as_json:
            emit_json(report)
        elif not plan.pending:
            show(f"{org}/{ref}: nothing to do ({len(plan.skipped)} applied, none pending).")
        else:
            show(f"{org}/{ref}: would apply {len(plan.pending)} migration(s) (dry run, nothing changed):")
            for migration in plan.pending:
                show(f"  {files[migration.version].path}")
        return
    body = {
        "migrations": [{"version": m.version, "name": m.name, "sql": m.sql} for m in local],
        "include_all": include_all,
    }
    answer = client.post(path_of("v1", "projects", org, ref, "migrations"), body)
    applied = [files[row["version"]] for row in answer["applied"]]
    failed = answer.get("failed")
    report["applied"] = [_row(item) for item in applied]
    report["pending"] = [row for row in report["pending"] if row not in report["applied"]]
    if failed is not None:
        report["failed"] = {**failed, "file": str(files[failed["version"]].path)}
    if as_json:
        emit_json(report)
    else:
        for item in applied:
            show(f"applied {item.path}")
    if failed is not None:
        raise DevFailure(_failure(failed, files[failed["version"]], len(applied)))
    if not as_json:
        show(f"{org}/{ref}: {len(applied)} migration(s) applied.")


def _row(item: LocalMigration) -> dict[str, str]:
    return {"version": item.migration.version, "name": item.migration.name, "file": str(item.path)}


def _refusal(refused: PlanRefused, local: list[LocalMigration]) -> str:
    """The plan's refusal with the local files it is about (versions the database has alone stay versions)."""
    paths = {item.migration.version: str(item.path) for item in local}
    named = [paths.get(version, version) for version in refused.versions[:10]]
    more = f" and {len(refused.versions) - 10} more" if len(refused.versions) > 10 else ""
    message = refused.message.replace("include_all", "--include-all")  # the service names its request's field
    return f"{message} [{', '.join(named)}{more}]"


def _failure(failed: dict[str, object], item: LocalMigration, applied_before: int) -> str:
    number = int(str(failed.get("statement") or 0))
    statements = split_statements(item.migration.sql)
    where = "its history row"
    if 0 < number <= len(statements):
        first = statements[number - 1].splitlines()[0][:80]
        where = f"statement {number} ({first!r})"
    sqlstate = f" [SQLSTATE {failed['sqlstate']}]" if failed.get("sqlstate") else ""
    return (
        f"{item.path}: {where} failed: {failed.get('message')}{sqlstate}. It was rolled back with its history "
        f"row; later files were not tried ({applied_before} applied before it). Fix the file and run "
        "`nextmavens db migrate` again"
    )


@db.command("types")
@PROJECT
@click.option("--json", "as_json", is_flag=True, help='Print {"project", "schemas", "types"}.')
@api_errors
def types(project: str | None, as_json: bool) -> None:
    """Print the TypeScript types of the project's own schemas (supabase-js's `Database`), generated by the host's
    postgres-meta as the project's read-only role. ORG/REF defaults to the linked project."""
    org, ref = chosen_project(project)
    answer = client_for().get(path_of("v1", "projects", org, ref, "types", "typescript"))
    if as_json:
        emit_json(answer)
        return
    click.echo(answer["types"], nl=not str(answer["types"]).endswith("\n"))
