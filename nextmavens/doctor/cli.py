"""`nextmavens doctor [--json]`: run on the host (through the nextmavens-env wrapper), exit 1 on any failure."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from nextmavens import ui
from nextmavens.cliparts import (
    DEFAULT_LOCK_TIMEOUT,
    Failure,
    database_options,
    load,
    make_engine,
    projects_option,
    run_engine,
)
from nextmavens.doctor.checks import Check, failed, healthy
from nextmavens.doctor.hostfile import DoctorConfigError, default_path, load_doctor_config

_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


def print_checks(checks: list[Check]) -> None:
    table = Table(title="nextmavens doctor", title_justify="left")
    for column in ("check", "target", "result", "detail", "hint"):
        table.add_column(column, overflow="fold")
    for check in checks:
        style = _STYLE[check.status]
        table.add_row(
            escape(check.name),
            escape(check.target),
            f"[{style}]{check.status}[/]",
            escape(check.detail),
            escape(check.hint),
        )
    ui.out.print(table)
    bad = sum(ch.status == "failed" for ch in checks)
    skipped = sum(ch.status == "skipped" for ch in checks)
    summary = f"{len(checks) - bad - skipped} ok, {bad} failed, {skipped} skipped"
    ui.out.print(f"[red]{summary}[/]" if bad else f"[green]{summary}[/]")


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON (name, target, ok, detail, hint).")
@projects_option
@database_options
@click.option(
    "--edge-config",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_EDGE_CONFIG",
    required=True,
    help="The edge settings on the host [env NEXTMAVENS_EDGE_CONFIG].",
)
@click.option(
    "--doctor-config",
    type=click.Path(path_type=Path),
    default=None,
    help="The doctor's settings [env NEXTMAVENS_DOCTOR_CONFIG; default: doctor.yaml beside the edge settings].",
)
def doctor(
    as_json: bool,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    edge_config: Path,
    doctor_config: Path | None,
) -> None:
    """Check that every shared service and every project's services answer as they should. Read-only."""
    # The observers and the edge load only when the doctor runs: every other command starts without them.
    from nextmavens.doctor.observe import DoctorInputs, run_doctor
    from nextmavens.edge.hostruntime import edge_runtime
    from nextmavens.edge.inputs import EdgeProject
    from nextmavens.edge.step import applied_projects, load_edge

    edge = load_edge(edge_config)
    path = doctor_config or default_path({**os.environ, "NEXTMAVENS_EDGE_CONFIG": str(edge_config)})
    assert path is not None
    try:
        host = load_doctor_config(path)
    except DoctorConfigError as exc:
        raise Failure(str(exc)) from None
    manifests = load(projects_dir)
    engine = make_engine(dsn, master_key, DEFAULT_LOCK_TIMEOUT)

    def read_projects() -> list[EdgeProject]:
        with engine.secrets() as store:
            return applied_projects(manifests, store)

    checks: list[Check] = []
    projects: list[EdgeProject] = []
    try:
        projects = run_engine(read_projects)
    except Failure as exc:
        checks.append(failed("control database", "nextmavens", exc.message, "is nextmavens-postgres running?"))
    declared = {p.ref for p in manifests.projects if p.manifest.state != "absent"}
    never_applied = sorted(declared - {p.ref for p in projects})
    checks += [failed("project", ref, "declared, but never applied", "run nextmavens apply") for ref in never_applied]
    inputs = DoctorInputs(
        runtime=edge_runtime(edge),
        host=host,
        projects=projects,
        certbot_config_dir=Path(edge.settings.letsencrypt_dir),
        evolution_key=os.environ.get("EVOLUTION_API_KEY"),
        now=datetime.now(UTC),
    )
    checks += run_doctor(inputs)
    if as_json:
        click.echo(json.dumps([check.as_json() for check in checks], indent=2))
    else:
        print_checks(checks)
    if not healthy(checks):
        sys.exit(1)
