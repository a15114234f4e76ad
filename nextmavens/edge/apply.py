"""The edge step of `nextmavens apply`: check everything first (pure), then converge in a fixed order.

`check_edge` runs once, before anything changes (the commands run it before their database change): host
names, memory admission, and a render of every artifact. `apply_edge` takes its result, renders
with the real secrets, and converges in DESIGN.md's order: per-project containers -> Kong config -> nginx
(+ certificates, then nginx again for the new names) -> Supavisor/Realtime tenants -> WhatsApp instances in
Evolution. A failing step is
reported and, where a safe previous state exists (Kong's running config, nginx's last good config), that
state is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import jinja2

from nextmavens.edge.certs import CertbotDirs, Resolver, ensure_certificates, observe_certificates
from nextmavens.edge.clients.evolution import EvolutionApi
from nextmavens.edge.clients.http import AdminApiError, scrub
from nextmavens.edge.clients.kong_admin import KongAdmin
from nextmavens.edge.clients.tenants import RealtimeTenants, SupavisorTenants
from nextmavens.edge.inputs import EdgeInputError, EdgeProject, capacity_problems, hostname_problems
from nextmavens.edge.kong import KongConfig, render_kong
from nextmavens.edge.memory import admit
from nextmavens.edge.nginx import NginxApplier, NginxApplyError, render_nginx
from nextmavens.edge.services import (
    RenderedServices,
    compose_command,
    compose_project_name,
    render_project_services,
    write_project_files,
)
from nextmavens.edge.settings import EdgeSettings
from nextmavens.edge.whatsapp import converge_whatsapp
from nextmavens.keys import ProjectSecrets, issue_api_keys, new_jwt_secret, new_password
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import project_names
from nextmavens.runner import Runner


class EdgeRefused(RuntimeError):
    """The edge cannot be applied; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("edge refused, nothing changed:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class EdgeCheck:
    """What `check_edge` passed: the refs it found servable. The edge step takes it instead of checking again."""

    refs: frozenset[str]


def check_edge(
    settings: EdgeSettings,
    manifests: Sequence[ProjectManifest],
    running: Collection[str] = (),
    certificates: Collection[str] = (),
) -> EdgeCheck:
    """Raises EdgeRefused with every reason the edge would refuse or fail to render these manifests.

    Renders what the edge step renders (services, Kong, nginx), so a set that cannot render stops a command
    before anything changes instead of after. Projects without secrets yet get throwaway ones: secrets only
    fill values, they never decide whether a config renders."""
    problems = hostname_problems(settings, manifests) + capacity_problems(settings, manifests)
    admission = admit(settings, manifests, running)
    if not admission.ok:
        problems.append(admission.message())
    if problems:
        raise EdgeRefused(problems)
    projects = [EdgeProject(m, _stand_in_secrets(m.ref)) for m in manifests]
    try:
        plan_edge(settings, projects)
        render_nginx(settings, projects, certificates)
    except (ValueError, jinja2.TemplateError) as exc:  # pydantic's ValidationError is a ValueError
        raise EdgeRefused([f"the edge configuration cannot be rendered: {exc}"]) from None
    return EdgeCheck(refs=frozenset(m.ref for m in manifests))


@dataclass(frozen=True)
class EdgePlan:
    kong: KongConfig
    services: dict[str, RenderedServices]  # active and suspended projects


def plan_edge(settings: EdgeSettings, projects: Sequence[EdgeProject]) -> EdgePlan:
    """Every artifact rendered, nothing changed. The renderers' own guard raises what only the real secrets
    show (a key two projects share): refused here, still before any change."""
    try:
        services = {
            p.ref: render_project_services(settings, p.manifest, p.secrets)
            for p in projects
            if p.state in ("active", "suspended")
        }
        return EdgePlan(kong=render_kong(settings, projects), services=services)
    except EdgeInputError as exc:
        raise EdgeRefused(exc.problems) from None


def _stand_in_secrets(ref: str) -> ProjectSecrets:
    jwt_secret = new_jwt_secret()
    return ProjectSecrets(
        jwt_secret=jwt_secret,
        keys=issue_api_keys(jwt_secret),
        passwords={role: new_password() for role in project_names(ref).login_roles},
    )


@dataclass
class EdgeRuntime:
    """The I/O the edge needs, each piece injectable for tests and the sandbox."""

    settings: EdgeSettings
    services_dir: Path
    run: Runner
    kong: KongAdmin
    nginx: NginxApplier
    certbot_dirs: CertbotDirs
    cert_backoff_file: Path
    resolve: Resolver
    supavisor: SupavisorTenants | None = None
    realtime: RealtimeTenants | None = None
    evolution: EvolutionApi | None = None  # None: no Evolution API on this host (or no key for it)
    issue_certificates: bool = True
    apps: AppsHook | None = None  # deployed apps (nextmavens/apps/reconcile.py); None: no app deployments here


class StepReport(Protocol):
    done: list[str]
    warnings: list[str]
    errors: list[str]


class AppsHook(Protocol):
    """The apps' part of an apply and of a destroy (nextmavens/apps/reconcile.py's HostApps)."""

    def served_names(self, projects: Sequence[EdgeProject]) -> list[str]: ...

    def reconcile(self, projects: Sequence[EdgeProject]) -> StepReport: ...

    def remove_project(self, ref: str) -> StepReport: ...


@dataclass
class EdgeReport:
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a domain whose DNS does not point here yet
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def merge(self, other: StepReport) -> None:
        """`other`'s lines after ours, each once (a step run again after new certificates repeats its findings)."""
        for mine, theirs in ((self.done, other.done), (self.warnings, other.warnings), (self.errors, other.errors)):
            mine += [line for line in theirs if line not in mine]


def apply_edge(runtime: EdgeRuntime, projects: Sequence[EdgeProject], checked: EdgeCheck) -> EdgeReport:
    """Converge the edge to `projects`, which `check_edge` passed (`checked`) before anything changed."""
    settings = runtime.settings
    unchecked = sorted(p.ref for p in projects if p.ref not in checked.refs)
    if unchecked:
        raise EdgeRefused([f"{ref}: not in the set the edge checked" for ref in unchecked])
    plan = plan_edge(settings, projects)  # raises EdgeRefused before anything changes
    report = EdgeReport()

    # 1. containers: write compose + 0600 env files; up for active, stop for suspended/absent
    for project in sorted(projects, key=lambda p: p.ref):
        rendered = plan.services.get(project.ref)
        if rendered is not None:
            write_project_files(runtime.services_dir, rendered)
        elif not (runtime.services_dir / project.ref / "compose.yaml").exists():
            continue  # absent and never deployed: nothing to stop
        result = runtime.run(compose_command(runtime.services_dir, project.manifest))
        verb = "started" if project.state == "active" else "stopped"
        if result.returncode == 0:
            report.done.append(f"{project.ref}: containers {verb}")
        else:
            hidden = [project.secrets.jwt_secret, *project.secrets.passwords.values()]
            hidden += [project.secrets.keys.anon, project.secrets.keys.service_role]
            detail = scrub((result.stderr or result.stdout or "").strip()[-400:], hidden)
            report.errors.append(f"{project.ref}: docker compose failed ({result.returncode}): {detail}")

    # 2. Kong
    try:
        loaded = runtime.kong.load(plan.kong)
        report.done.append("kong: config loaded" if loaded.changed else "kong: config unchanged")
    except AdminApiError as exc:
        report.errors.append(str(exc))

    # 3. nginx, certificates, nginx again when certificates were issued
    def nginx_step() -> None:
        certificates = set(observe_certificates(runtime.certbot_dirs.config_dir))
        try:
            changed = runtime.nginx.apply(render_nginx(settings, projects, certificates))
            report.done.append("nginx: reloaded" if changed else "nginx: unchanged")
        except NginxApplyError as exc:
            report.errors.append(str(exc))

    apps = runtime.apps if any(p.manifest.apps for p in projects) else None

    def apps_step() -> None:
        """Deployed apps: orphans removed, the releases nginx serves kept running, their files current."""
        if apps is not None:
            report.merge(apps.reconcile(projects))

    nginx_step()
    apps_step()
    if runtime.issue_certificates:
        app_names = apps.served_names(projects) if apps is not None else []
        certs = ensure_certificates(
            settings,
            projects,
            runtime.certbot_dirs,
            runtime.cert_backoff_file,
            resolve=runtime.resolve,
            extra_names=app_names,
        )
        report.done.extend(f"certificate {name}: issued" for name in certs.issued)
        report.warnings.extend(
            f"certificate {d.spec.cert_name} not requested: {d.reason}" for d in certs.decisions if d.action == "skip"
        )
        report.errors.extend(f"certificate {name}: {error}" for name, error in sorted(certs.failed.items()))
        if certs.issued:
            nginx_step()
        if set(certs.issued) & set(app_names):  # only an app's new certificate changes an app's file
            apps_step()

    # 4. tenants: ensured for active projects; a suspended or removed project loses its pooler tenant
    for project in sorted(projects, key=lambda p: p.ref):
        try:
            if project.state != "active":
                if runtime.supavisor is not None:
                    outcome = runtime.supavisor.ensure_absent(project.ref)
                    if outcome.action == "removed":
                        report.done.append(f"{project.ref}: supavisor tenant removed ({project.state})")
                continue
            if runtime.supavisor is not None:
                outcome = runtime.supavisor.ensure(project.manifest)
                report.done.append(f"{project.ref}: supavisor tenant {outcome.action}")
            if runtime.realtime is not None:
                outcome = runtime.realtime.ensure(project.manifest, project.secrets)
                report.done.append(f"{project.ref}: realtime tenant {outcome.action}")
        except AdminApiError as exc:
            report.errors.append(f"{project.ref}: {exc}")

    # 5. WhatsApp instances in the shared Evolution API
    whatsapp = converge_whatsapp(runtime.evolution, settings.evolution_hooks_url, projects)
    report.done += whatsapp.done
    report.warnings += whatsapp.warnings
    report.errors += whatsapp.errors
    return report


# What the edge writes per project (write_project_files), temporary files included.
PROJECT_FILES = ("compose.yaml", "rest.env", "auth.env", "storage.env")


def remove_project(runtime: EdgeRuntime, ref: str) -> EdgeReport:
    """After `destroy`: the project's containers (`compose down`, never `-v`: volumes and the storage folder
    are data), its compose and 0600 env files, its Supavisor and Realtime tenants. Kong's consumers and
    nginx's vhost go with the edge step that follows, which renders every project but this one."""
    report = EdgeReport()
    if runtime.apps is not None:  # its apps first: their containers, images, nginx files and network
        report.merge(runtime.apps.remove_project(ref))
    directory = runtime.services_dir / ref
    compose_file = directory / "compose.yaml"
    if compose_file.exists():
        down = ["docker", "compose", "-p", compose_project_name(ref), "-f", str(compose_file), "down"]
        result = runtime.run(down)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip()[-400:]
            # The files stay: they are what `docker compose down` needs to be run again.
            report.errors.append(f"{ref}: docker compose down failed ({result.returncode}): {detail}")
            return report
        report.done.append(f"{ref}: containers removed (volumes kept)")
    if directory.is_dir():
        names = [*PROJECT_FILES, *(f".{name}.tmp" for name in PROJECT_FILES)]
        for name in names:
            (directory / name).unlink(missing_ok=True)
        left = sorted(p.name for p in directory.iterdir())
        if left:
            report.warnings.append(f"{ref}: {directory} kept, it holds files the edge did not write: {left}")
        else:
            directory.rmdir()
            report.done.append(f"{ref}: compose and env files removed")
    try:
        if runtime.supavisor is not None and runtime.supavisor.ensure_absent(ref).action == "removed":
            report.done.append(f"{ref}: supavisor tenant removed")
        if runtime.realtime is not None and runtime.realtime.get(ref) is not None and runtime.realtime.delete(ref):
            report.done.append(f"{ref}: realtime tenant removed")
    except AdminApiError as exc:
        report.errors.append(f"{ref}: {exc}")
    return report
