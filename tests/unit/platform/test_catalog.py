"""The project view: manifests (read again when they change) and applied records merged by (org, ref)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nextmavens.control.store import access
from nextmavens.control.store.access import AppliedProject
from nextmavens.manifest.loader import load_manifests
from nextmavens.platform.catalog import Catalog, project_views
from nextmavens.platform.models import ProjectList
from nextmavens.platform.service import ManifestSource, Service, ServiceSettings
from tests.support.projects import write_project

APPLIED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_declared_applied_and_both(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop")
    write_project(tmp_path, "acme", "draft", state="suspended")
    applied = [
        AppliedProject("acme", "shop", "Old name", "active", "projects/acme/shop.yaml", APPLIED_AT),
        AppliedProject("acme", "gone", "Gone", "active", "projects/acme/gone.yaml", APPLIED_AT),
    ]
    views = project_views(load_manifests(tmp_path), applied)
    assert list(views) == [("acme", "draft"), ("acme", "gone"), ("acme", "shop")]
    shop = views[("acme", "shop")]
    assert (shop.name, shop.declared_state, shop.applied_state, shop.last_applied_at) == (
        "Project shop",
        "active",
        "active",
        APPLIED_AT,
    )
    assert (views[("acme", "draft")].declared_state, views[("acme", "draft")].applied_state) == ("suspended", None)
    assert (views[("acme", "gone")].declared_state, views[("acme", "gone")].applied_state) == (None, "active")
    assert views[("acme", "gone")].as_json()["last_applied_at"] == APPLIED_AT.isoformat()


def test_without_manifests_only_what_is_applied() -> None:
    applied = [AppliedProject("acme", "shop", "Shop", "suspended", None, None)]
    assert [v.as_json()["applied_state"] for v in project_views(None, applied).values()] == ["suspended"]


def test_manifests_are_read_again_when_a_file_changes(tmp_path: Path) -> None:
    source = ManifestSource(tmp_path, recheck_s=0)
    assert source.current() is None
    write_project(tmp_path, "acme", "shop")
    first = source.current()
    assert first is not None and [p.ref for p in first.projects] == ["shop"]
    assert source.current() is first  # unchanged: not read again
    (tmp_path / "acme" / "broken.yaml").write_text("ref: [\n")
    assert source.current() is first  # invalid: the last valid set stays
    (tmp_path / "acme" / "broken.yaml").unlink()
    write_project(tmp_path, "acme", "crm")
    second = source.current()
    assert second is not None and [p.ref for p in second.projects] == ["crm", "shop"]
    held = ManifestSource(tmp_path, recheck_s=3600)
    assert held.current() is not None
    write_project(tmp_path, "acme", "later")
    assert [p.ref for p in held.current().projects] == ["crm", "shop"]  # type: ignore[union-attr]


def test_a_project_shows_the_commit_it_was_last_applied_from(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop")
    write_project(tmp_path, "acme", "crm")
    applied = [AppliedProject("acme", "shop", "Shop", "active", None, APPLIED_AT, "c0ffee" * 6 + "c0ff")]
    views = project_views(load_manifests(tmp_path), applied)
    shown = ProjectList.model_validate({"projects": [v.as_json() for v in views.values()]}).projects
    assert {p.ref: p.last_apply_commit for p in shown} == {"shop": "c0ffee" * 6 + "c0ff", "crm": None}


def test_a_listing_is_the_views_json_in_the_published_shape(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop")
    write_project(tmp_path, "acme", "crm")
    applied = [AppliedProject("acme", "shop", "Shop", "active", "projects/acme/shop.yaml", APPLIED_AT)]
    catalog = Catalog.of(project_views(load_manifests(tmp_path), applied))
    listed = json.loads(catalog.listing([("acme", "shop"), ("acme", "crm")]))
    assert listed == {"projects": [catalog.views[("acme", "shop")].as_json(), catalog.views[("acme", "crm")].as_json()]}
    assert ProjectList.model_validate(listed).projects[0].last_applied_at == APPLIED_AT.isoformat()
    assert json.loads(catalog.listing([])) == {"projects": []}


class CountingPool:
    def __init__(self) -> None:
        self.connections = 0

    @contextmanager
    def connection(self) -> Iterator[object]:
        self.connections += 1
        yield object()


def test_the_catalog_reads_applied_projects_again_only_after_the_recheck_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = [AppliedProject("acme", "shop", "Shop", "active", None, APPLIED_AT)]
    monkeypatch.setattr(access, "applied_projects", lambda conn: list(applied))
    settings = ServiceSettings(dsn="host=127.0.0.1", master_key=tmp_path / "key", projects_dir=tmp_path / "none")
    pool = CountingPool()

    def service(recheck_s: float) -> Service:
        made = Service(replace(settings, applied_recheck_s=recheck_s))
        made.pool = pool  # type: ignore[assignment]
        return made

    held = service(3600)
    first = held.catalog()
    assert list(first.views) == [("acme", "shop")] and pool.connections == 1
    applied.append(AppliedProject("acme", "crm", "CRM", "active", None, APPLIED_AT))
    assert held.catalog() is first and pool.connections == 1  # within the recheck time: not read again
    fresh = service(0)
    before = fresh.catalog()
    assert list(before.views) == [("acme", "crm"), ("acme", "shop")]
    assert fresh.catalog() is before and pool.connections == 3  # read again, unchanged: not rebuilt
    applied.pop()
    assert list(fresh.catalog().views) == [("acme", "shop")]
