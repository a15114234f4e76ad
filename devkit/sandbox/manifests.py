"""The sandbox operator's manifest repository: a git repository in the state directory holding the checkout's
example projects (projects/), which the sandbox's deploy publishes (group data `manifest_source`). `up` brings it
to the examples: created the first time, and a commit on top whenever the examples changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from nextmavens.gitrepo import git_ok, is_repository_root

AUTHOR = ["-c", "user.name=NextMavens sandbox", "-c", "user.email=sandbox@nextmavens.invalid"]


def seed_manifests(examples: Path, repo: Path) -> str:
    """Make `repo` hold exactly the YAML files of `examples` at its HEAD; returns HEAD."""
    if not is_repository_root(repo):
        repo.mkdir(parents=True, exist_ok=True)
        git_ok(repo, "init", "--quiet", "--initial-branch=main")
    wanted = {p.relative_to(examples) for p in examples.rglob("*.yaml")}
    tracked = {Path(line) for line in git_ok(repo, "ls-files", "-z").split("\0") if line}
    for stale in tracked - wanted:
        (repo / stale).unlink(missing_ok=True)
    for relative in sorted(wanted):
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(examples / relative, repo / relative)
    git_ok(repo, "add", "--all")
    if git_ok(repo, "status", "--porcelain").strip():
        git_ok(repo, *AUTHOR, "commit", "--quiet", "-m", "The checkout's example projects")
    return git_ok(repo, "rev-parse", "HEAD").strip()
