"""Memory admission: do the active projects' services fit the host's budget next to the shared services?

Footprints are expected resident memory (docker stats medians, reference section 8), not the containers'
limits (limits are caps above the footprint). Each always-on database pool also costs Postgres a backend
per connection. A manifest's `resources.memory_mb` replaces the computed figure for its project's services;
each app's `memory_mb` counts on top.

Pure: plain values in, a decision out. The edge's precheck (edge/apply.py) refuses an apply that `admit` does not
admit whole, before anything changes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from nextmavens.edge.settings import GOTRUE_MB, POSTGREST_MB, STORAGE_MB, EdgeSettings
from nextmavens.manifest.models import ProjectManifest

POSTGREST_POOL = 3
GOTRUE_POOL = 3
STORAGE_POOL = 3
POSTGRES_BACKEND_MB = 5  # estimate of one idle backend's private memory; measure on the target host


@dataclass(frozen=True)
class Footprint:
    ref: str
    services: dict[str, int]  # service -> MiB (includes the Postgres backends of its pool)
    total_mb: int
    source: str  # "services" | "manifest"


def service_footprints(manifest: ProjectManifest) -> dict[str, int]:
    services = {
        "rest": POSTGREST_MB + POSTGREST_POOL * POSTGRES_BACKEND_MB,
        "auth": GOTRUE_MB + GOTRUE_POOL * POSTGRES_BACKEND_MB,
    }
    if manifest.storage.enabled:
        services["storage"] = STORAGE_MB + STORAGE_POOL * POSTGRES_BACKEND_MB
    return services


def project_footprint(manifest: ProjectManifest) -> Footprint:
    """What an *active* project costs; suspended and absent projects run nothing (0)."""
    if manifest.state != "active":
        return Footprint(manifest.ref, {}, 0, "stopped")
    services = service_footprints(manifest)
    apps = app_footprints(manifest)
    if manifest.resources.memory_mb is not None:
        # resources.memory_mb stands for the project's own services; its apps' limits always count on top
        return Footprint(
            manifest.ref, {**services, **apps}, manifest.resources.memory_mb + sum(apps.values()), "manifest"
        )
    return Footprint(manifest.ref, {**services, **apps}, sum(services.values()) + sum(apps.values()), "services")


def app_footprints(manifest: ProjectManifest) -> dict[str, int]:
    """Each declared app at its memory limit (`app:<name>` -> MiB). A release switch runs two containers of an
    app for a few seconds; the steady state is what admission counts."""
    return {f"app:{app.name}": app.memory_mb for app in manifest.apps}


@dataclass(frozen=True)
class Admission:
    budget_mb: int
    shared_mb: int
    needed_mb: int
    admitted: tuple[str, ...]  # refs that fit, running ones first, then new ones by ref
    refused: tuple[str, ...]
    footprints: tuple[Footprint, ...]

    @property
    def available_mb(self) -> int:
        return self.budget_mb - self.shared_mb

    @property
    def ok(self) -> bool:
        return not self.refused

    def message(self) -> str:
        head = (
            f"memory: {len(self.footprints)} active projects need {self.needed_mb} MiB; "
            f"{self.available_mb} MiB available (budget {self.budget_mb} MiB - shared services "
            f"{self.shared_mb} MiB)"
        )
        if self.ok:
            return head + f"; {self.available_mb - self.needed_mb} MiB left"
        by_ref = {f.ref: f for f in self.footprints}
        refused = ", ".join(f"{ref} ({by_ref[ref].total_mb} MiB)" for ref in self.refused)
        admitted_mb = sum(by_ref[ref].total_mb for ref in self.admitted)
        return (
            f"{head}. Over budget by {self.needed_mb - self.available_mb} MiB: nothing was changed. "
            f"What fits: {len(self.admitted)} projects ({admitted_mb} MiB: "
            f"{', '.join(self.admitted) or 'none'}); does not fit: {refused}. "
            "Suspend or remove projects, lower resources.memory_mb, disable storage, or raise the budget."
        )


def shared_services_total_mb(settings: EdgeSettings) -> int:
    return sum(settings.shared_services_mb.values())


def admit(settings: EdgeSettings, manifests: Sequence[ProjectManifest], running: Collection[str] = ()) -> Admission:
    """Admit running projects first (they already hold their memory), then new ones in ref order."""
    footprints = [project_footprint(m) for m in manifests if m.state == "active"]
    order = sorted(footprints, key=lambda f: (f.ref not in running, f.ref))
    shared = shared_services_total_mb(settings)
    left = settings.memory_budget_mb - shared
    admitted: list[str] = []
    refused: list[str] = []
    for footprint in order:
        if footprint.total_mb <= left:
            admitted.append(footprint.ref)
            left -= footprint.total_mb
        else:
            refused.append(footprint.ref)
            left = -1  # keep the order stable: nothing after the first refusal is admitted either
    return Admission(
        budget_mb=settings.memory_budget_mb,
        shared_mb=shared,
        needed_mb=sum(f.total_mb for f in footprints),
        admitted=tuple(admitted),
        refused=tuple(refused),
        footprints=tuple(sorted(footprints, key=lambda f: f.ref)),
    )


def projects_that_fit(settings: EdgeSettings, per_project_mb: int) -> int:
    return max(0, (settings.memory_budget_mb - shared_services_total_mb(settings)) // per_project_mb)
