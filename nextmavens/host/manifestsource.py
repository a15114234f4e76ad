"""The operator's manifest repository, the one a deploy publishes: group data `manifest_source` (relative paths
from the checkout's root). It must be the root of its own git repository, because the host receives commits,
never loose files, and the operator pulls the service's commits back into it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from nextmavens import gitrepo
from nextmavens.host import publish
from nextmavens.templates import REPO_ROOT

DEFAULT_BRANCH = "main"  # the host's branch when the operator's HEAD is detached


class ManifestSourceError(Exception):
    pass


@dataclass(frozen=True)
class ManifestSource:
    path: Path
    commit: str
    branch: str
    dirty: bool  # uncommitted changes there are not published

    def bundle(self) -> bytes:
        """HEAD's history as one git bundle (what the host fetches)."""
        with tempfile.TemporaryDirectory(prefix="nextmavens-manifests-") as tmp:
            target = Path(tmp) / "manifests.bundle"
            gitrepo.bundle(self.path, target)
            return target.read_bytes()


def resolve(setting: str) -> Path:
    path = Path(setting).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def manifest_source(setting: str) -> ManifestSource:
    """The repository `manifest_source` names, at its HEAD; ManifestSourceError says what to do otherwise."""
    path = resolve(setting)
    if not path.is_dir():
        raise ManifestSourceError(f"manifest_source {setting!r}: {path} is not a folder")
    revision = gitrepo.revision(path)
    if revision is None:
        raise ManifestSourceError(
            f"manifest_source {setting!r}: {path} is not the root of a git repository with a commit. The host keeps "
            "a git repository of the manifests and receives commits, so keep yours in a repository whose root holds "
            f"<org>/org.yaml and <org>/<ref>.yaml: `git init {path} && git -C {path} add -A && git -C {path} commit "
            "-m 'Project manifests'` (a copy of the examples outside this checkout is best), and set "
            "manifest_source in your group file to its path"
        )
    branch = gitrepo.current_branch(path) or DEFAULT_BRANCH
    return ManifestSource(path, revision.commit, branch, revision.dirty)


def publish_action(
    host_repo: publish.HostRepo, source: str, commit: str, projects_dir: str, pull: str
) -> publish.Action:
    """publish.decide for the operator's repository at `source`: the host's recent commits that `commit` does not
    contain (unknown here, or not its ancestors) are the ones the operator lacks."""
    path = Path(source)
    lacking = [
        c
        for c in host_repo.recent
        if not (gitrepo.has_commit(path, c.sha) and gitrepo.is_ancestor(path, c.sha, commit))
    ]
    return publish.decide(host_repo, commit, lacking, projects_dir, source, pull)
