"""What the edge takes per project, and the checks that need all projects plus the platform settings.

Pure: plain values in, a list of problems out. `apply.check_edge` runs the host-name checks before anything
changes; the renderers run every check (`check_edge_inputs`) as their own guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nextmavens.edge.settings import EdgeSettings
from nextmavens.keys import ProjectSecrets
from nextmavens.manifest.models import ProjectManifest
from nextmavens.validation import check_domain


@dataclass(frozen=True)
class EdgeProject:
    """One project as the edge sees it: its manifest and the engine's secrets for it."""

    manifest: ProjectManifest
    secrets: ProjectSecrets
    org: str = ""
    # WhatsApp instance name -> (Evolution token, webhook secret), as the database step sealed them
    whatsapp_secrets: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @property
    def state(self) -> str:
        return self.manifest.state


class EdgeInputError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def served(projects: Sequence[EdgeProject]) -> list[EdgeProject]:
    """Projects that have routes and vhosts: active and suspended ones (suspended answer 503)."""
    return sorted((p for p in projects if p.state != "absent"), key=lambda p: p.ref)


def project_hostnames(settings: EdgeSettings, project: EdgeProject) -> list[str]:
    return [settings.project_host(project.ref), *project.manifest.domains]


def platform_names(settings: EdgeSettings) -> dict[str, str]:
    """The platform's own host names -> the settings field that names them (the edge serves each with the
    platform's certificate, so no tenant may claim one)."""
    names = {
        settings.api_domain: "api_domain",
        settings.studio_domain: "studio_domain",
        settings.pooler_public_host: "pooler_host",
    }
    if settings.platform_domain is not None:
        names[settings.platform_domain] = "platform_domain (platform_service_domain)"
    if settings.project_studio_domain is not None:
        names.setdefault(settings.project_studio_domain, "project_studio_domain")
    return names


def platform_name_problem(settings: EdgeSettings, name: str) -> str | None:
    """Why a tenant (app domain, custom domain, preview host) may not use `name`, or None. Refused: a platform
    name itself, anything under api_domain (project API hosts `<ref>.<api_domain>`), and a parent of a platform
    name (owning `X` would let a preview become `platform.X` with the platform's certificate)."""
    name = name.lower().rstrip(".")
    names = platform_names(settings)
    if name in names:
        return f"host name {name!r} is the platform's own ({names[name]})"
    if name.endswith("." + settings.api_domain):
        return (
            f"host name {name!r} lies under the API domain {settings.api_domain!r} (api_domain), whose names "
            "belong to project refs"
        )
    for platform, field_name in sorted(names.items()):
        if platform.endswith("." + name):
            return (
                f"host name {name!r} is a parent of the platform's {platform!r} ({field_name}): a name under it "
                "could take the platform's name over"
            )
    return None


def hostname_problems(settings: EdgeSettings, manifests: Sequence[ProjectManifest]) -> list[str]:
    """Host-name clashes and bad names: needs only manifests, so apply can check before it changes anything."""
    problems: list[str] = []
    owner: dict[str, str] = {
        settings.api_domain: "the platform (API domain)",
        settings.studio_domain: "the platform (Studio)",
    }
    if settings.platform_domain is not None:
        owner[settings.platform_domain] = "the platform service"
    if settings.project_studio_domain is not None:
        owner[settings.project_studio_domain] = "Studio for projects"
    owner.setdefault(settings.pooler_public_host, "the platform (pooler)")
    platform = platform_names(settings)
    refs: set[str] = set()
    for manifest in sorted(manifests, key=lambda m: m.ref):
        if manifest.ref in refs:
            problems.append(f"project ref {manifest.ref!r} appears twice")
        refs.add(manifest.ref)
        for name in [settings.project_host(manifest.ref), *manifest.domains]:
            try:
                check_domain(name)
            except ValueError as exc:
                problems.append(f"{manifest.ref}: {exc}")
                continue
            claimed = owner.setdefault(name, f"project {manifest.ref!r}")
            if claimed != f"project {manifest.ref!r}":
                problems.append(f"{manifest.ref}: host name {name!r} is already claimed by {claimed}")
        for app in manifest.apps:
            for name in app.domains:
                claimed = owner.setdefault(name, f"app {manifest.ref}/{app.name}")
                if claimed != f"app {manifest.ref}/{app.name}":
                    problems.append(
                        f"{manifest.ref}: app {app.name!r}: host name {name!r} is already claimed by {claimed}"
                    )
                refused = platform_name_problem(settings, name)
                if refused and name not in platform:  # a platform name itself: "already claimed" said it
                    problems.append(f"{manifest.ref}: app {app.name!r}: domains: {refused}")
        for name in manifest.domains:
            refused = platform_name_problem(settings, name)
            if refused and name not in platform:  # a platform name itself: "already claimed" said it
                problems.append(f"{manifest.ref}: domains: custom domain {refused}")
    return problems


def capacity_problems(settings: EdgeSettings, manifests: Sequence[ProjectManifest]) -> list[str]:
    """More served projects than the shared Postgres has Realtime replication slots for. Suspended projects
    count: they keep their Realtime tenant (edge/clients/tenants.py), and with it their slot."""
    limit = settings.max_projects
    served_refs = sorted(m.ref for m in manifests if m.state != "absent")
    if limit is None or len(served_refs) <= limit:
        return []
    return [
        f"{len(served_refs)} projects would be served (active and suspended), but the host is sized for "
        f"max_projects = {limit}: the shared Postgres has a Realtime replication slot and walsender for "
        f"{limit} projects only. Raise `max_projects` in group data and deploy the host, or mark projects absent."
    ]


def key_problems(projects: Sequence[EdgeProject]) -> list[str]:
    keys: dict[str, str] = {}
    problems: list[str] = []
    for project in projects:
        if project.state == "absent":
            continue
        for role, key in (
            ("anon", project.secrets.keys.anon),
            ("service_role", project.secrets.keys.service_role),
        ):
            other = keys.setdefault(key, f"{project.ref}/{role}")
            if other != f"{project.ref}/{role}":
                problems.append(f"{project.ref}: its {role} key is identical to {other}'s (never reuse keys)")
    return problems


def check_edge_inputs(settings: EdgeSettings, projects: Sequence[EdgeProject]) -> None:
    """Raises EdgeInputError with every reason the edge cannot be rendered for this set."""
    problems = hostname_problems(settings, [p.manifest for p in projects]) + key_problems(projects)
    if problems:
        raise EdgeInputError(problems)
