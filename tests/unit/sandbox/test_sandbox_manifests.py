"""The sandbox operator's manifest repository follows the checkout's examples, one commit per change."""

from __future__ import annotations

from pathlib import Path

from devkit.sandbox.manifests import seed_manifests
from nextmavens.gitrepo import git_ok, revision


def test_seeded_from_the_examples_then_a_commit_only_when_they_change(tmp_path: Path) -> None:
    examples = tmp_path / "projects"
    (examples / "acme").mkdir(parents=True)
    (examples / "acme" / "org.yaml").write_text("org: acme\n")
    (examples / "acme" / "shop.yaml").write_text("ref: shop\n")
    repo = tmp_path / "state" / "manifests"
    first = seed_manifests(examples, repo)
    assert revision(repo) == revision(repo).__class__(first, dirty=False)
    assert seed_manifests(examples, repo) == first  # unchanged examples: no new commit
    (examples / "acme" / "shop.yaml").unlink()
    (examples / "acme" / "crm.yaml").write_text("ref: crm\n")
    second = seed_manifests(examples, repo)
    assert second != first
    assert git_ok(repo, "rev-parse", f"{second}^").strip() == first  # on top: the host fast-forwards
    assert sorted(git_ok(repo, "ls-files").split()) == ["acme/crm.yaml", "acme/org.yaml"]
