"""The projects the service knows: declared in the manifests, applied by the engine, or both. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nextmavens.control.store.access import AppliedProject
from nextmavens.manifest.loader import ManifestSet


@dataclass(frozen=True)
class ProjectView:
    org: str
    ref: str
    name: str
    declared_state: str | None  # the manifest's state; None: no manifest declares it (any more)
    applied_state: str | None  # the state last applied; None: never applied
    manifest_path: str | None
    last_applied_at: datetime | None
    last_apply_commit: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "ref": self.ref,
            "name": self.name,
            "declared_state": self.declared_state,
            "applied_state": self.applied_state,
            "manifest_path": self.manifest_path,
            "last_applied_at": self.last_applied_at.isoformat() if self.last_applied_at else None,
            "last_apply_commit": self.last_apply_commit,
        }


def project_views(manifests: ManifestSet | None, applied: list[AppliedProject]) -> dict[tuple[str, str], ProjectView]:
    """(org, ref) -> view. A ref applied under another org than its manifest now names shows under both."""
    views: dict[tuple[str, str], ProjectView] = {}
    for record in applied:
        views[(record.org, record.ref)] = ProjectView(
            record.org,
            record.ref,
            record.name,
            None,
            record.state,
            record.manifest_path,
            record.last_applied_at,
            record.last_apply_commit,
        )
    for project in manifests.projects if manifests else ():
        key = (project.org, project.ref)
        known = views.get(key)
        views[key] = ProjectView(
            project.org,
            project.ref,
            project.manifest.name,
            project.manifest.state,
            known.applied_state if known else None,
            project.path,
            known.last_applied_at if known else None,
            known.last_apply_commit if known else None,
        )
    return dict(sorted(views.items()))


@dataclass(frozen=True)
class Catalog:
    """The views with each one's JSON encoded once, when the catalog is built: a listing joins the encodings of
    what the caller sees instead of validating and encoding every project again on every request."""

    views: dict[tuple[str, str], ProjectView]
    encoded: dict[tuple[str, str], bytes] = field(repr=False)

    @classmethod
    def of(cls, views: dict[tuple[str, str], ProjectView]) -> Catalog:
        return cls(views, {key: encode(view.as_json()) for key, view in views.items()})

    def listing(self, keys: Iterable[tuple[str, str]]) -> bytes:
        """`{"projects": [...]}` of these views, in the order given."""
        return b'{"projects":[' + b",".join(self.encoded[key] for key in keys) + b"]}"


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
