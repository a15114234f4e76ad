"""The write path against a real git repository, with a stand-in engine: commit only after a good apply, the
file and the index as they were after a refusal or a failed apply."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from nextmavens.engine.plan import Plan, PlanError
from nextmavens.engine.session import ApplyResult, Engine
from nextmavens.manifest.loader import ManifestSet
from nextmavens.platform.manifestrepo import (
    Conflict,
    ManifestRejected,
    ManifestRepository,
    RepositoryMissing,
    author_ident,
)
from nextmavens.platform.privileged import InProcess

SHOP = "ref: shop\nname: Shop\nauth:\n  site_url: https://shop.example\n"


class StubEngine:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.applied: list[ManifestSet] = []

    def apply(self, manifests: ManifestSet, **_: Any) -> ApplyResult:
        if self.fail is not None:
            raise self.fail
        self.applied.append(manifests)
        return ApplyResult(len(self.applied), Plan(changes=()))


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    (folder / "acme").mkdir(parents=True)
    (folder / "acme" / "org.yaml").write_text("name: Acme\n")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "-c", "user.name=op", "-c", "user.email=op@example.test", "commit", "-qm", "start")
    return folder


def create(text: str) -> Any:
    def render(current: ManifestSet, existing: str | None) -> str:
        if existing is not None:
            raise Conflict("exists", "exists")
        return text

    return render


def test_commits_as_the_member_after_the_apply(repo: Path) -> None:
    engine = StubEngine()
    written = ManifestRepository(repo).change(
        "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, engine)), "ana@acme.test", "Create project acme/shop"
    )
    assert written.commit == git(repo, "rev-parse", "HEAD").strip()
    assert (
        git(repo, "log", "-1", "--format=%an <%ae>|%cn|%s")
        == "ana@acme.test <ana@acme.test>|NextMavens platform|Create project acme/shop\n"
    )
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["acme/shop.yaml"]
    assert [p.key for p in engine.applied[0].projects] == ["acme/shop"]
    assert git(repo, "status", "--porcelain") == ""


def test_other_staged_changes_stay_out_of_the_commit(repo: Path) -> None:
    (repo / "acme" / "org.yaml").write_text("name: Acme Corp\n")
    git(repo, "add", "acme/org.yaml")
    ManifestRepository(repo).change(
        "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, StubEngine())), "a@b.test", "m"
    )
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["acme/shop.yaml"]
    assert git(repo, "status", "--porcelain").strip() == "M  acme/org.yaml"


@pytest.mark.parametrize(
    ("text", "engine", "raised"),
    [
        ("ref: shop\nname: Shop\nauth:\n  site_url: ftp://x\n", StubEngine(), ManifestRejected),
        ("ref: other\nname: Shop\nauth:\n  site_url: https://s.example\n", StubEngine(), ManifestRejected),
        (SHOP, StubEngine(PlanError("the server lacks extension x")), PlanError),
    ],
    ids=["invalid-field", "ref-not-the-file-name", "apply-fails"],
)
def test_a_refused_change_leaves_no_file_and_no_commit(
    repo: Path, text: str, engine: StubEngine, raised: type[Exception]
) -> None:
    before = git(repo, "rev-parse", "HEAD")
    with pytest.raises(raised) as caught:
        ManifestRepository(repo).change(
            "acme/shop.yaml", create(text), InProcess(cast(Engine, engine)), "a@b.test", "m"
        )
    assert git(repo, "rev-parse", "HEAD") == before
    assert not (repo / "acme" / "shop.yaml").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    if raised is ManifestRejected:
        assert "projects/acme/shop.yaml:" in str(caught.value)


def test_a_failed_edit_puts_the_old_text_back(repo: Path) -> None:
    ManifestRepository(repo).change(
        "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, StubEngine())), "a@b.test", "m"
    )
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PlanError):
        ManifestRepository(repo).change(
            "acme/shop.yaml",
            lambda current, existing: (existing or "") + "state: suspended\n",
            cast(Engine, StubEngine(PlanError("no"))),
            "a@b.test",
            "m",
        )
    assert (repo / "acme" / "shop.yaml").read_text() == SHOP
    assert git(repo, "rev-parse", "HEAD") == head


def test_uncommitted_edits_to_the_file_are_refused(repo: Path) -> None:
    ManifestRepository(repo).change(
        "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, StubEngine())), "a@b.test", "m"
    )
    (repo / "acme" / "shop.yaml").write_text(SHOP + "# local edit\n")
    with pytest.raises(Conflict, match="uncommitted"):
        ManifestRepository(repo).change(
            "acme/shop.yaml",
            lambda c, e: SHOP + "state: suspended\n",
            InProcess(cast(Engine, StubEngine())),
            "a@b.test",
            "m",
        )
    assert (repo / "acme" / "shop.yaml").read_text() == SHOP + "# local edit\n"


def test_an_invalid_set_already_there_refuses_every_write(repo: Path) -> None:
    (repo / "acme" / "broken.yaml").write_text("ref: broken\n")
    engine = StubEngine()
    with pytest.raises(Conflict, match="manifests in the repository are invalid"):
        ManifestRepository(repo).change(
            "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, engine)), "a@b.test", "m"
        )
    assert not (repo / "acme" / "shop.yaml").exists() and not engine.applied


def test_not_a_work_tree(tmp_path: Path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    assert not ManifestRepository(folder).ready()
    with pytest.raises(RepositoryMissing, match="not the root of a git work tree"):
        ManifestRepository(folder).change(
            "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, StubEngine())), "a@b.test", "m"
        )
    assert not (folder / "acme").exists()


def test_a_folder_inside_another_repository_is_not_the_manifest_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    folder = tmp_path / "projects"
    folder.mkdir()
    assert not ManifestRepository(folder).ready()
    git(folder, "init", "-q")
    assert ManifestRepository(folder).ready()


def test_hooks_never_run(repo: Path) -> None:
    # --no-verify alone skips pre-commit but not post-commit: only core.hooksPath keeps both from running.
    for name in ("pre-commit", "post-commit"):
        hook = repo / ".git" / "hooks" / name
        hook.write_text('#!/bin/sh\ntouch "$(dirname "$0")/ran"\nexit 1\n')
        hook.chmod(0o755)
    ManifestRepository(repo).change(
        "acme/shop.yaml", create(SHOP), InProcess(cast(Engine, StubEngine())), "a@b.test", "m"
    )
    assert not (repo / ".git" / "hooks" / "ran").exists()


def test_author_ident_drops_git_delimiters() -> None:
    assert author_ident("a<b>@c.test\n") == "ab@c.test <ab@c.test>"
