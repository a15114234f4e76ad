"""The edge around a command's database change (`apply`, `keys rotate`, `destroy` with `--edge-config`): one
check before anything changes, then the edge step after the change, under the same lock and recorded in the
audit log as its own run. The commands parse, call these, and print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from rich.markup import escape

from nextmavens import ui
from nextmavens.cliparts import Failure, load, run_engine
from nextmavens.edge.apply import (
    AppsHook,
    EdgeCheck,
    EdgeRefused,
    EdgeReport,
    apply_edge,
    check_edge,
    remove_project,
)
from nextmavens.edge.certs import observe_certificates
from nextmavens.edge.hostruntime import edge_runtime, running_refs
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.settingsfile import EdgeConfigError, EdgeHost, load_edge_host
from nextmavens.engine.desired import CLUSTER_SCOPE
from nextmavens.engine.secretstore import SecretStore
from nextmavens.engine.session import Engine
from nextmavens.manifest.loader import ManifestSet
from nextmavens.naming import POOLER_ROLE, compose_project_name

NO_EDGE = "no --edge-config or NEXTMAVENS_EDGE_CONFIG"


@dataclass(frozen=True)
class ReadyEdge:
    """The edge once it has been checked against the manifests: all the step after the change needs."""

    host: EdgeHost
    config_path: Path
    manifests: ManifestSet
    checked: EdgeCheck


def ready_edge(config_path: Path, manifests: ManifestSet, unchanged: str) -> ReadyEdge:
    """The edge's one check, before the command changes anything; a refusal says what was not done
    (`unchanged`)."""
    return _checked(load_edge(config_path), config_path, manifests, unchanged)


def ready_for_rotate(config_path: Path, projects_dir: Path, ref: str) -> ReadyEdge:
    """`keys rotate` renders every project again: its manifests must be the ones apply uses."""
    host = load_edge(config_path)  # a bad settings file is named before the manifests
    manifests = load(projects_dir) if projects_dir.is_dir() else None
    if manifests is None or manifests.by_ref(ref) is None:
        raise Failure(
            f"{projects_dir} does not declare {ref!r}: the edge step renders every project from the manifests "
            "apply uses (pass --projects or NEXTMAVENS_PROJECTS); no keys were rotated"
        )
    return _checked(host, config_path, manifests, "no keys were rotated")


def load_edge(config_path: Path) -> EdgeHost:
    """The host's edge settings (`--edge-config`); a bad file is an expected failure that names it."""
    try:
        return load_edge_host(config_path)
    except EdgeConfigError as exc:
        raise Failure(str(exc)) from None


def _checked(host: EdgeHost, config_path: Path, manifests: ManifestSet, unchanged: str) -> ReadyEdge:
    try:
        running = running_refs(host)
    except EdgeConfigError as exc:
        raise Failure(f"{exc}; {unchanged}") from None
    certificates = observe_certificates(host.settings.letsencrypt_dir)
    try:
        checked = check_edge(host.settings, [p.manifest for p in manifests.projects], running, certificates)
    except EdgeRefused as refused:
        raise Failure(
            f"the edge cannot serve these manifests; {unchanged}:\n  " + "\n  ".join(refused.problems)
        ) from None
    return ReadyEdge(host, config_path, manifests, checked)


def edge_step(
    engine: Engine, ready: ReadyEdge, removed: str | None = None, apps: AppsHook | None = None
) -> EdgeReport:
    """The edge after the database, under the same lock and recorded in the audit log as its own run.
    `removed`: a destroyed project's ref, whose containers, files and tenants go first; `apps`: the deployed apps'
    hook (the command passes it: the apps sit above the edge)."""

    def step() -> EdgeReport:
        with engine.changing("apply edge", [{"project": "edge", "action": "converge", "kind": "edge"}]) as (_, store):
            report = EdgeReport()
            if removed is not None:
                report = remove_project(edge_runtime(ready.host, apps), removed)
            if not report.errors:
                host = with_engine_pooler_password(ready.host, store)
                projects = applied_projects(ready.manifests, store)
                converged = apply_edge(edge_runtime(host, apps), projects, ready.checked)
                report.done += converged.done
                report.warnings += converged.warnings
                report.errors += converged.errors
            if report.errors:
                raise EdgeStepFailed(report)
            return report

    try:
        result: EdgeReport = run_engine(step)
    except EdgeStepFailed as failed:
        return failed.report
    return result


class EdgeStepFailed(Exception):
    """Raised inside the audit context so the run is recorded as failed; the report still gets printed."""

    def __init__(self, report: EdgeReport) -> None:
        super().__init__("; ".join(report.errors))
        self.report = report


def edge_step_or_fail(
    engine: Engine, ready: ReadyEdge, done: str, retry: str, removed: str | None = None, apps: AppsHook | None = None
) -> EdgeReport:
    """The edge step after rotate or destroy: its report printed, and a failure that says what `done` already
    holds (the database part cannot be undone by the edge) and what to run (`retry`) once the cause is fixed."""
    try:
        report = edge_step(engine, ready, removed, apps)
    except Failure as exc:
        raise Failure(f"{done}, but the edge step failed: {exc.message}\nOnce fixed, run: {retry}") from None
    print_edge_report(report)
    if report.errors:
        raise Failure(f"{done}, but the edge step failed (errors above). Once fixed, run: {retry}")
    return report


def print_edge_report(report: EdgeReport) -> None:
    for line in report.done:
        ui.out.print(f"  edge: {escape(line)}")
    for line in report.warnings:
        ui.out.print(f"  [yellow]edge warning[/]: {escape(line)}")
    for line in report.errors:
        ui.err.print(f"  [red]edge error[/]: {escape(line)}")


def applied_projects(manifests: ManifestSet, store: SecretStore) -> list[EdgeProject]:
    """The declared projects the engine holds secrets for: a project never applied has nothing at the edge."""
    found = []
    for loaded in manifests.projects:
        secrets = store.project_secrets(loaded.ref)
        if secrets is None:
            continue
        whatsapp = {}
        for instance in loaded.manifest.whatsapp.instances:
            pair = store.whatsapp_secrets(loaded.ref, instance.name)
            if pair is not None:
                whatsapp[instance.name] = pair
        found.append(EdgeProject(loaded.manifest, secrets, loaded.org, whatsapp))
    return found


def with_engine_pooler_password(host: EdgeHost, store: SecretStore) -> EdgeHost:
    """Supavisor logs in as the engine's `pgbouncer` role, whose password only the engine knows (it sets it
    as a SCRAM verifier): hand that one to the tenants, whatever the host's secrets file says."""
    password = store.get(CLUSTER_SCOPE, f"password:{POOLER_ROLE}")
    if password is None:
        return host
    settings = host.settings.model_copy(update={"pooler_manager_password": SecretStr(password)})
    return EdgeHost(settings=settings, config=host.config)


def apply_again(ready: ReadyEdge) -> str:
    return f"nextmavens apply --edge-config {ready.config_path}"


def rotated_without_edge() -> str:
    return (
        f"the edge was NOT converged ({NO_EDGE}): where it runs, it still accepts the old keys and refuses the "
        "new ones until `nextmavens apply --edge-config FILE` succeeds."
    )


def destroyed_without_edge(ref: str) -> str:
    return (
        f"the edge was not cleaned up ({NO_EDGE}): the compose project {compose_project_name(ref)}, its env files and"
        " tenants stay until removed by hand."
    )


def after_failed_destroy(ready: ReadyEdge, ref: str) -> str:
    """What to run by hand when the edge could not remove a destroyed project."""
    folder = Path(ready.host.settings.services_dir) / ref
    return (
        f"docker compose -p {compose_project_name(ref)} -f {folder / 'compose.yaml'} down (never -v), remove {folder}, "
        f"then {apply_again(ready)}"
    )
