"""Root never runs git as root in a repository another user owns: that user writes `.git/config`, and git runs the
commands it names (here core.fsmonitor, which `git status` starts). Run as root (this machine, CI): the hook must
run as the repository's owner, on the engine's side (nextmavens.gitrepo) and on the host's (nextmavens.host.publish).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nextmavens import gitrepo
from nextmavens.host import publish

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser"),
]

OWNER = "nobody"


@pytest.fixture
def hostile_repo() -> Iterator[tuple[Path, Path]]:
    """A repository owned by `nobody` whose config makes `git status` run a hook that records its uid."""
    base = Path(tempfile.mkdtemp(prefix="nextmavens-gitowner-"))
    try:
        base.chmod(0o755)
        repo, record = base / "repo", base / "ran-as"
        repo.mkdir()
        ident = ["-c", "user.name=T", "-c", "user.email=t@example.test"]
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (repo / "a.yaml").write_text("a: 1\n")
        subprocess.run(["git", "-C", str(repo), "add", "a.yaml"], check=True)
        subprocess.run(["git", "-C", str(repo), *ident, "commit", "-qm", "one"], check=True)
        hook = base / "hook.sh"
        hook.write_text(f"#!/bin/sh\nid -u >> {record}\nexit 1\n")
        hook.chmod(0o755)
        record.touch()
        record.chmod(0o666)
        subprocess.run(["git", "-C", str(repo), "config", "core.fsmonitor", str(hook)], check=True)
        subprocess.run(["chown", "-R", f"{OWNER}:", str(repo)], check=True)
        yield repo, record
    finally:
        shutil.rmtree(base)


def _ran_as(record: Path) -> set[str]:
    return set(record.read_text().split())


def test_the_engines_git_runs_as_the_repositorys_owner(hostile_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, record = hostile_repo
    found = gitrepo.revision(repo)
    assert found is not None and not found.dirty
    uids = _ran_as(record)
    assert uids, "the hook never ran: the test proves nothing"
    assert "0" not in uids and uids == {str(repo.stat().st_uid)}
    # a bundle (backups) is written by root from git's output, to a folder only root may write
    target = tmp_path / "out.bundle"
    gitrepo.bundle(repo, target, "--all")
    assert target.read_bytes().startswith(b"# v2 git bundle")


def test_the_hosts_git_runs_as_the_repositorys_owner(hostile_repo: tuple[Path, Path]) -> None:
    repo, record = hostile_repo
    done = subprocess.run(["sh", "-c", publish.state_command(str(repo))], capture_output=True, text=True, check=True)
    assert publish.parse_state(done.stdout.splitlines()).kind == "repository"
    uids = _ran_as(record)
    assert uids and "0" not in uids
