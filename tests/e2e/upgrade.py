"""The upgrade path: a fresh sandbox is converged by the previous release's deploy before the session converges
it with this tree, so the converges that follow are an upgrade of a host that release built.

Only the deploy runs from the old tree: the sandbox itself is booted by this tree's devkit. The old deploy runs
from a `git worktree` of PREVIOUS_RELEASE (its deploys/site.py, its group data, its `nextmavens` package on
PYTHONPATH), and builds the host's wheel from that worktree's HEAD, as it would on an operator's checkout.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conftest import Sandbox

REPO = Path(__file__).resolve().parents[2]

# The previous release, the one place it is named: the last commit of main that landed and passed CI before
# this tree (d3fa5f1: the dashboard, MCP servers, app deploys, email and media, metrics). Bump it
# to main's commit each time a release lands and passes CI, so every session proves the upgrade from the release
# operators run now.
PREVIOUS_RELEASE = "d3fa5f1531e87cc381c536529dcdd930beb6db2d"

# The example project whose keys the previous release created: they must survive the upgrade unchanged.
UPGRADE_PROBE = "acme/shop"


@dataclass
class PreviousConverge:
    """What the previous release's converge did, or why it did not run (`problem`)."""

    problem: str = ""
    reused: bool = False  # the guest was converged before the session (NEXTMAVENS_E2E_REUSE_SANDBOX=1)
    shallow: bool = False  # a shallow clone whose origin could not give the release: no history to upgrade from
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)
    keys: dict[str, Any] = field(default_factory=dict)  # UPGRADE_PROBE's keys as the previous release made them


def release_missing(repo: Path = REPO, commit: str = PREVIOUS_RELEASE) -> str:
    """Why `commit` cannot be checked out in `repo` ('' when it can). A shallow clone lacks it: then its
    origin is asked for that one commit first."""
    if _has_commit(repo, commit):
        return ""
    shallow = is_shallow(repo)
    if shallow and _git(repo, "remote", "get-url", "origin").returncode == 0:
        _git(repo, "fetch", "--quiet", "--depth", "1", "origin", commit)
        if _has_commit(repo, commit):
            return ""
    how = "this is a shallow clone and its origin did not give it: " if shallow else ""
    return (
        f"the previous release {commit} is not in this repository ({how}fetch it with `git fetch origin {commit}` "
        "or clone with full history), so the upgrade from it was not tested"
    )


def is_shallow(repo: Path = REPO) -> bool:
    return _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def _has_commit(repo: Path, commit: str) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=300, check=False)


@contextmanager
def release_tree(commit: str = PREVIOUS_RELEASE, repo: Path = REPO) -> Iterator[Path]:
    """A temporary detached worktree of `commit`, removed (with its registration) afterwards."""
    with tempfile.TemporaryDirectory(prefix="nextmavens-previous-release-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), commit],
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False, capture_output=True
            )


def converge_previous_release(
    sandbox: Sandbox, platform_dir: str, converge: Callable[[Sandbox, Path], dict[str, Any]]
) -> PreviousConverge:
    """Converge a fresh sandbox with PREVIOUS_RELEASE's deploy; a guest converged before is left alone (a
    reused sandbox already runs this tree, and the old deploy over it would be a downgrade)."""
    if sandbox.run(f"test -e {shlex.quote(platform_dir)}/venv").returncode == 0:
        return PreviousConverge(problem="the sandbox was converged before this session: no upgrade", reused=True)
    missing = release_missing()
    if missing:
        return PreviousConverge(problem=missing, shallow=is_shallow())
    t0 = time.monotonic()
    with release_tree() as tree:
        try:
            result = converge(sandbox, tree)
        except AssertionError as failed:
            raise AssertionError(f"the previous release's deploy ({PREVIOUS_RELEASE[:7]}) failed: {failed}") from None
    keys = sandbox.check(f"{shlex.quote(platform_dir)}/bin/nextmavens-env nextmavens keys show {UPGRADE_PROBE} --json")
    return PreviousConverge(seconds=time.monotonic() - t0, changed=result["changed"], keys=json.loads(keys))


# --- what an upgrade must not leave behind --------------------------------------------------------------------
def package_files(repo: Path = REPO) -> set[str]:
    """The product's Python modules in this tree, as paths below site-packages."""
    listed = _git(repo, "ls-files", "nextmavens").stdout.split()
    return {p for p in listed if p.endswith(".py")}


def installed_modules(sandbox: Sandbox, venv: str) -> set[str]:
    """The `nextmavens` package's .py files installed in the host's venv, relative to site-packages."""
    script = (
        "import pathlib, nextmavens; root = pathlib.Path(nextmavens.__file__).parent; "
        "print('\\n'.join(str(p.relative_to(root.parent)) for p in root.rglob('*.py')))"
    )
    out = sandbox.check(f"{shlex.quote(venv)}/bin/python -c {shlex.quote(script)}")
    return set(out.split())


def units_needing_reload(sandbox: Sandbox) -> list[str]:
    """nextmavens-* units whose file changed on disk after systemd loaded it (a daemon-reload was missed)."""
    out = sandbox.check(
        "for u in $(systemctl list-unit-files --no-legend --plain 'nextmavens-*' | awk '{print $1}'); do "
        'echo "$u $(systemctl show -p NeedDaemonReload --value "$u")"; done'
    )
    return [line.split()[0] for line in out.splitlines() if line.split()[1:] == ["yes"]]


def job_units(sandbox: Sandbox) -> set[str]:
    """Unit files the deploy's timers wrote (they carry its marker line; the guest has nextmavens-* units of
    its own)."""
    from tasks.app import JOB_UNIT_MARKER

    out = sandbox.check(
        f"grep -l -x -F {shlex.quote(JOB_UNIT_MARKER)} /etc/systemd/system/nextmavens-* 2>/dev/null || true"
    )
    return {line.rsplit("/", 1)[1] for line in out.split()}
