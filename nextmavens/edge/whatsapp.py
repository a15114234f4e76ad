"""The edge's WhatsApp step: each active project's declared instances converged in the shared Evolution API.

Read first (fetchInstances once, then webhook/find and settings/find per existing instance), write only what
nextmavens.edge.whatsappinstances lists, and report each write as a line. An instance no longer declared is left
alone and reported (`nextmavens whatsapp delete` removes it). A suspended project's instances are left as they
are. Secrets go to Evolution in request bodies only; every error text is scrubbed of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from nextmavens.edge.clients.evolution import EvolutionApi
from nextmavens.edge.clients.http import AdminApiError
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.whatsappinstances import (
    SETTINGS,
    DesiredInstance,
    NotOurs,
    ObservedInstance,
    hook_url,
    instance_changes,
    observed_from_row,
    orphan_notice,
    orphans,
)


@dataclass
class WhatsAppReport:
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def desired_instances(project: EdgeProject, hooks_url: str) -> tuple[list[DesiredInstance], list[str]]:
    """The project's declared instances with their sealed secrets; and the names still without secrets."""
    found, missing = [], []
    for spec in project.manifest.whatsapp.instances:
        pair = project.whatsapp_secrets.get(spec.name)
        if pair is None:
            missing.append(spec.name)
            continue
        found.append(
            DesiredInstance(
                org=project.org,
                ref=project.ref,
                instance=spec.name,
                webhook_url=hook_url(hooks_url, project.org, project.ref, spec.name),
                events=tuple(spec.events),
                token=pair[0],
                webhook_secret=pair[1],
            )
        )
    return found, missing


def converge_whatsapp(
    api: EvolutionApi | None, hooks_url: str | None, projects: Sequence[EdgeProject]
) -> WhatsAppReport:
    report = WhatsAppReport()
    declaring = sorted(p.ref for p in projects if p.state == "active" and p.manifest.whatsapp.instances)
    if api is None or hooks_url is None:
        if declaring:
            report.warnings.append(
                f"whatsapp instances of {', '.join(declaring)} not converged: this host's edge settings name no "
                "Evolution API (evolution_api_url, evolution_hooks_url and its key): deploy the host"
            )
        return report
    if not any(p.manifest.whatsapp.instances for p in projects):
        return report  # nothing declared: an Evolution that is down fails no apply (`whatsapp show` lists orphans)
    try:
        rows = api.fetch_instances()
    except AdminApiError as exc:
        report.errors.append(f"whatsapp: {exc}")
        return report
    observed = {o.evolution_name: o for o in map(observed_from_row, rows)}
    for project in sorted(projects, key=lambda p: p.ref):
        declared = [i.name for i in project.manifest.whatsapp.instances]
        for name in orphans(project.ref, declared, observed):
            report.warnings.append(f"{project.ref}: whatsapp instance {name} is {orphan_notice(project.org, name)}")
        if project.state != "active":
            continue
        wanted, missing = desired_instances(project, hooks_url)
        for name in missing:
            report.errors.append(f"{project.ref}: whatsapp instance {name} has no sealed secrets yet; run apply")
        for desired in wanted:
            try:
                report.done += _converge_one(api, desired, observed.get(desired.evolution_name))
            except (NotOurs, AdminApiError) as exc:
                report.errors.append(f"{project.ref}: {exc}")
    return report


def _converge_one(api: EvolutionApi, desired: DesiredInstance, current: ObservedInstance | None) -> list[str]:
    name, secrets = desired.evolution_name, desired.secrets()
    if current is not None and current.token == desired.token:
        current = replace(current, webhook=api.find_webhook(name, secrets), settings=api.find_settings(name))
    changes = instance_changes(desired, current)
    for change in changes:
        if change.action == "create":
            api.create(desired.create_body(), secrets)
        elif change.action == "webhook":
            api.set_webhook(name, desired.webhook(), secrets)
        else:
            api.set_settings(name, SETTINGS)
    if not changes:
        return [f"{desired.ref}: whatsapp instance {name} unchanged"]
    return [f"{desired.ref}: {change.line()}" for change in changes]
