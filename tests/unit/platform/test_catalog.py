"""The project view: manifests (read again when they change) and applied records merged by (org, ref)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from nextmavens.control.store.access import AppliedProject
from nextmavens.manifest.loader import load_manifests
from nextmavens.platform.catalog import project_views
from nextmavens.platform.service import ManifestSource
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
