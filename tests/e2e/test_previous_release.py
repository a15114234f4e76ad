"""The previous release the e2e session upgrades from (tests/e2e/upgrade.py): named by a full commit id, and
found or fetched in a shallow clone, or the reason it was not is said. Local git repositories only; not e2e."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .upgrade import PREVIOUS_RELEASE, release_missing, release_tree


def _git(cwd: Path, *args: str) -> str:
    env_args = ["-c", "user.email=e2e@example.invalid", "-c", "user.name=e2e", "-c", "protocol.file.allow=always"]
    return subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _history(tmp_path: Path) -> tuple[Path, str]:
    """A repository with two commits; returns it and the first (the 'previous release')."""
    origin = tmp_path / "origin"
    origin.mkdir()
    _git(origin, "init", "-q")
    (origin / "f").write_text("old\n")
    _git(origin, "add", "f")
    _git(origin, "commit", "-q", "-m", "previous release")
    first = _git(origin, "rev-parse", "HEAD").strip()
    (origin / "f").write_text("new\n")
    _git(origin, "commit", "-q", "-am", "this tree")
    return origin, first


def test_the_previous_release_is_a_full_commit_id() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", PREVIOUS_RELEASE)


def test_a_shallow_clone_fetches_the_release_from_its_origin(tmp_path: Path) -> None:
    origin, first = _history(tmp_path)
    _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", "clone")
    clone = tmp_path / "clone"
    assert _git(clone, "rev-parse", "--is-shallow-repository").strip() == "true"
    assert release_missing(clone, first) == ""
    with release_tree(first, clone) as tree:
        assert (tree / "f").read_text() == "old\n"
    assert not tree.exists()
    assert str(tree) not in _git(clone, "worktree", "list")


def test_a_release_nowhere_to_be_had_is_named_with_the_fix(tmp_path: Path) -> None:
    origin, _ = _history(tmp_path)
    _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", "clone")
    absent = "0" * 40
    problem = release_missing(tmp_path / "clone", absent)
    assert absent in problem and "shallow clone" in problem and f"git fetch origin {absent}" in problem
    assert "not tested" in problem
