"""Git for the manifest repository, run one way everywhere: an argv list, a controlled environment (no system or user
configuration, no hooks, no prompts) and `safe.directory` for the one folder.

Root never runs git in a repository another user owns: that user writes its `.git/config`, and git runs commands
named there (core.fsmonitor on `status`, filter drivers on checkout), so the service's user could make root run
anything. Run by root, git runs as the owner of the repository's `.git` instead (`owner_uid`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nextmavens.runner import identity, run_command

GIT_TIMEOUT_S = 30.0


class GitFailed(Exception):
    pass


def git_environment() -> dict[str, str]:
    """Only what git needs: none of the caller's GIT_* variables, no system or user configuration."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def git_argv(folder: str | Path, *args: str) -> list[str]:
    """`git -C folder ...` trusting that folder (and its .git) whoever owns it, with hooks and signing off."""
    folder = str(folder)
    return [
        "git",
        "-c",
        f"safe.directory={folder}",
        "-c",
        f"safe.directory={folder.rstrip('/')}/.git",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "commit.gpgSign=false",
        "-C",
        folder,
        *args,
    ]


def owner_uid(folder: str | Path) -> int | None:
    """For a root caller: the uid to run git as in `folder` (the owner of its `.git`, or of the folder while it has
    none) when that is not root; None: run as the caller."""
    if os.geteuid() != 0:
        return None
    for path in (Path(folder) / ".git", Path(folder)):
        try:
            uid = path.stat().st_uid
        except OSError:
            continue
        return uid or None
    return None


def git(folder: str | Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return run_command(git_argv(folder, *args), timeout=timeout, env=git_environment(), as_uid=owner_uid(folder))


def git_ok(folder: str | Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> str:
    """stdout of a git command that must succeed; GitFailed names the subcommand and git's first line."""
    done = git(folder, *args, timeout=timeout)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0][:300]
        raise GitFailed(f"git {args[0]} failed: {first}")
    return done.stdout


def is_repository_root(folder: Path) -> bool:
    """The folder is the root of a git work tree (not merely a folder inside someone else's)."""
    if not folder.is_dir():
        return False
    try:
        done = git(folder, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and Path(done.stdout.strip()).resolve() == folder.resolve()


@dataclass(frozen=True)
class Revision:
    """What a work tree holds: its HEAD commit, and whether files differ from it (uncommitted or untracked)."""

    commit: str
    dirty: bool


def revision(folder: Path) -> Revision | None:
    """HEAD and dirtiness of the repository rooted at `folder`; None when it is no repository root or has no
    commit yet."""
    if not is_repository_root(folder):
        return None
    head = git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        return None
    status = git_ok(folder, "status", "--porcelain", "--untracked-files=all")
    return Revision(head.stdout.strip(), bool(status.strip()))


def has_commit(folder: Path, commit: str) -> bool:
    return git(folder, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def is_ancestor(folder: Path, ancestor: str, descendant: str) -> bool:
    """`ancestor` is reachable from `descendant` (equal counts); False when either is unknown here."""
    return git(folder, "merge-base", "--is-ancestor", ancestor, descendant).returncode == 0


def current_branch(folder: Path) -> str | None:
    done = git(folder, "symbolic-ref", "--quiet", "--short", "HEAD")
    return done.stdout.strip() or None if done.returncode == 0 else None


def bundle(folder: Path, target: Path, *refs: str) -> None:
    """A bundle at `target` of the history of `refs` (default HEAD, which the host fetches; `--all` for a backup).
    Written by this process from git's output, so git (perhaps run as the repository's owner) needs no write access
    to `target`'s folder."""
    argv = git_argv(folder, "bundle", "create", "--quiet", "-", *(refs or ("HEAD",)))
    with open(target, "wb") as out:
        done = subprocess.run(  # noqa: S603 - argv list, no shell
            argv,
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=git_environment(),
            timeout=300,
            check=False,
            **identity(owner_uid(folder)),
        )
    if done.returncode != 0:
        first = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0][:300]
        raise GitFailed(f"git bundle failed: {first}")
