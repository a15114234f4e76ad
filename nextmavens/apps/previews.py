"""What a preview may be before anything builds: its host names are nobody else's (no manifest's, not the
platform's own), and it fits memory admission.

A preview (`nextmavens deploy ORG/REF APP --preview NAME`) is a second release of an app served at `NAME.<domain>`
for each of the app's domains. Its container holds the app's `memory_mb` like the app's own release, so admission
counts every preview running on the host on top of the active projects' footprints (edge/memory.py).

Pure: plain values in, a refusal message (or None) out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from nextmavens.apps.releases import preview_hosts
from nextmavens.edge.inputs import platform_name_problem
from nextmavens.edge.memory import project_footprint, shared_services_total_mb
from nextmavens.edge.settings import EdgeSettings
from nextmavens.manifest.models import ProjectManifest


def claimed_names(manifests: Iterable[ProjectManifest]) -> dict[str, str]:
    """Every name a manifest claims (a project's domains, its apps' domains) -> `REF` (or `REF app`)."""
    owners: dict[str, str] = {}
    for manifest in manifests:
        key = manifest.ref
        for domain in manifest.domains:
            owners.setdefault(domain, key)
        for app in manifest.apps:
            for domain in app.domains:
                owners.setdefault(domain, f"{key} {app.name}")
    return owners


def host_conflicts(name: str, domains: Sequence[str], manifests: Iterable[ProjectManifest]) -> list[str]:
    """The preview's host names a manifest already claims, as `host (owner)`."""
    owners = claimed_names(manifests)
    return [f"{host} ({owners[host]})" for host in preview_hosts(name, domains) if host in owners]


def platform_conflicts(settings: EdgeSettings, name: str, domains: Sequence[str]) -> list[str]:
    """The preview's host names that are the platform's (its own names, anything under api_domain), each with why:
    a preview there would be served with the platform's certificate."""
    return [
        f"{host}: {refused}"
        for host in preview_hosts(name, domains)
        if (refused := platform_name_problem(settings, host)) is not None
    ]


def preview_admission(
    settings: EdgeSettings,
    manifests: Sequence[ProjectManifest],
    previews_mb: Iterable[int],
    new_mb: int,
) -> str | None:
    """None when a new preview of `new_mb` fits next to the active projects (apps included) and the previews
    already running (`previews_mb`); else why not."""
    projects = sum(project_footprint(m).total_mb for m in manifests if m.state == "active")
    running = sum(previews_mb)
    available = settings.memory_budget_mb - shared_services_total_mb(settings)
    needed = projects + running + new_mb
    if needed <= available:
        return None
    return (
        f"memory: a preview of {new_mb} MiB does not fit: active projects need {projects} MiB and running previews "
        f"{running} MiB of {available} MiB available (budget {settings.memory_budget_mb} MiB - shared services); "
        "nothing was built. Remove a preview (--remove-preview NAME), lower the app's memory_mb, or raise the budget."
    )
