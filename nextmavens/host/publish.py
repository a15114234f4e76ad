"""Publishing the operator's manifest repository to the host's: what to do given what the host holds, and the host
commands that do it. Pure: the host's state arrives as plain values (the ManifestRepoState fact), the local
repository's answers as arguments, and every command is built with shlex.

The host's repository is the work tree the engine reads. A publish only ever fast-forwards it: commits the host
has and the operator has not (the platform service commits there) stop the deploy with the command that fetches
them, and so do files changed on the host but not committed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from nextmavens.gitrepo import git_argv, git_environment

PUBLISHED_REF = "refs/nextmavens/published"  # where a fetched bundle lands before the branch moves
SHOWN_COMMITS = 20  # host commits the fact lists (newest first) to name the ones the operator lacks
SHOWN_FILES = 10
SECTION = "--nextmavens-section--"


@dataclass(frozen=True)
class HostCommit:
    sha: str
    line: str  # "<short sha> <author>: <subject>"


@dataclass(frozen=True)
class HostRepo:
    kind: str  # "absent" | "plain" (a folder without git: an earlier release's copy) | "repository"
    head: str | None = None  # None: no commit yet
    dirty: tuple[str, ...] = ()  # `git status --porcelain` lines
    recent: tuple[HostCommit, ...] = ()  # newest first, up to SHOWN_COMMITS


@dataclass(frozen=True)
class Action:
    kind: str  # "create" | "convert" | "fast_forward" | "none" | "refuse"
    message: str


def pull_command(user: str, hostname: str, port: int, path: str) -> str:
    """What the operator runs in their manifest repository to get the host's commits. The host's repository
    belongs to the service's user, so git on the host must be told to trust it for the admin user."""
    upload = shlex.join(["git", "-c", f"safe.directory={path.rstrip('/')}/.git", "upload-pack"])
    port_part = "" if port == 22 else f":{port}"
    return shlex.join(["git", "pull", f"--upload-pack={upload}", f"ssh://{user}@{hostname}{port_part}{path}"])


def decide(host: HostRepo, published: str, lacking: Sequence[HostCommit], path: str, source: str, pull: str) -> Action:
    """What to do to publish commit `published` (HEAD of the operator's repository at `source`) to the host's
    repository at `path`. `lacking`: the host's recent commits that `published` does not contain."""
    if host.kind == "absent":
        return Action("create", f"create the manifest repository {path} at {published[:12]}")
    if host.kind == "plain":
        return Action("convert", f"make {path} (a plain folder) the manifest repository at {published[:12]}")
    if host.dirty:
        files = "\n  ".join(host.dirty[:SHOWN_FILES]) + ("\n  ..." if len(host.dirty) > SHOWN_FILES else "")
        return Action(
            "refuse",
            f"the host's manifest repository {path} has uncommitted changes, so nothing was published:\n  {files}\n"
            "Commit them there (as the service would) or remove them, then deploy again.",
        )
    if host.head == published:
        return Action("none", f"{path} is at {published[:12]}")
    if host.head is None or not lacking:
        return Action("fast_forward", f"fast-forward {path} to {published[:12]}")
    listed = "\n  ".join(c.line for c in lacking) + ("\n  ..." if len(lacking) >= SHOWN_COMMITS else "")
    return Action(
        "refuse",
        f"the host's manifest repository {path} has commits that {source} does not (made through the platform "
        f"service), so nothing was published:\n  {listed}\n"
        f"Get them first: in {source} run\n  {pull}\nthen deploy again.",
    )


def _git(path: str, *args: str, user: str | None = None) -> str:
    """git in `path` as `user`, or (None) as whoever owns `path`/.git: never as root in a repository another user
    owns, whose .git/config could name a command for git to run (see nextmavens/gitrepo.py)."""
    env = [f"{key}={value}" for key, value in sorted(git_environment().items()) if key != "PATH"]
    who = shlex.quote(user) if user else f'"$(stat -c %U {shlex.quote(path.rstrip("/") + "/.git")})"'
    return f"runuser -u {who} -- " + shlex.join(["env", *env, *git_argv(path, *args)])


def state_command(path: str) -> str:
    """The ManifestRepoState fact's command: kind, then HEAD, status and recent log as sections; exits 0."""
    p = shlex.quote(path)
    log_format = "--format=%H %h %an: %s"
    return (
        f"if [ ! -e {p} ]; then echo absent; elif [ ! -e {p}/.git ]; then echo plain; else echo repository;"
        f" {_git(path, 'rev-parse', '--verify', '--quiet', 'HEAD^{commit}')} || echo;"
        f" echo {SECTION}; {_git(path, 'status', '--porcelain', '--untracked-files=all')};"
        f" echo {SECTION}; {_git(path, 'log', f'-n{SHOWN_COMMITS}', log_format)} 2>/dev/null; fi; true"
    )


def parse_state(lines: Sequence[str]) -> HostRepo:
    if not lines or lines[0].strip() != "repository":
        kind = lines[0].strip() if lines else "absent"
        return HostRepo(kind if kind in ("absent", "plain") else "absent")
    parts: list[list[str]] = [[]]
    for line in lines[1:]:
        if line.strip() == SECTION:
            parts.append([])
        else:
            parts[-1].append(line)
    parts += [[]] * (3 - len(parts))
    head = next((line.strip() for line in parts[0] if line.strip()), None)
    dirty = tuple(line.rstrip() for line in parts[1] if line.strip())
    recent = []
    for line in parts[2]:
        sha, _, rest = line.strip().partition(" ")
        if sha:
            recent.append(HostCommit(sha, rest))
    return HostRepo("repository", head, dirty, tuple(recent))


def publish_commands(action: Action, path: str, bundle: str, commit: str, branch: str, owner: str) -> list[str]:
    """Shell commands (run as root) that carry out `action` from the uploaded `bundle`. Each re-checks on the host
    what the decision assumed (a clean tree, HEAD an ancestor) so a commit made meanwhile is never overwritten;
    the repository ends owned by `owner`, the service's user."""
    q = shlex.quote(commit)
    fetch = _git(path, "fetch", "--quiet", "--no-tags", bundle, f"+HEAD:{PUBLISHED_REF}")
    verify = f'test "$({_git(path, "rev-parse", PUBLISHED_REF)})" = {q}'
    status = _git(path, "status", "--porcelain", "--untracked-files=all")
    finish = [
        _git(path, "update-ref", "-d", PUBLISHED_REF),
        shlex.join(["rm", "-f", bundle]),
    ]
    readable = shlex.join(["chmod", "644", bundle])  # git reads it as the repository's owner; manifests only
    if action.kind in ("create", "convert"):
        return [
            *([shlex.join(["install", "-d", "-m", "755", path])] if action.kind == "create" else []),
            # the owner's before git first runs in it: from then on git runs as the owner only
            shlex.join(["chown", "-R", f"{owner}:{owner}", path]),
            readable,
            _git(path, "init", "--quiet", f"--initial-branch={branch}", user=owner),
            fetch,
            verify,
            # --mixed: HEAD and index at the commit, files left as they are (a converted folder loses nothing); then
            # only the files missing from the folder are written
            _git(path, "reset", "--quiet", "--mixed", commit),
            f"{_git(path, 'ls-files', '--deleted', '-z')} | xargs -0 -r {_git(path, 'checkout', '--quiet', '--')}",
            *finish,
            _refuse_if(status, _kept(path)),
        ]
    if action.kind == "fast_forward":
        head = _git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        ancestor = _git(path, "merge-base", "--is-ancestor", "HEAD", commit)
        moved = f"{path} received a commit during the deploy; nothing was published (deploy again)"
        return [
            _refuse_if(status, f"{path} changed on the host during the deploy; nothing was published:"),
            readable,
            fetch,
            verify,
            f"if {head} >/dev/null; then {ancestor} || {{ echo {shlex.quote(moved)} >&2; exit 1; }}; fi",
            _git(path, "merge", "--quiet", "--ff-only", commit),
            *finish,
        ]
    return []


def _refuse_if(status: str, message: str) -> str:
    """Fail with `message` and the changed files when `status` lists any."""
    return (
        f'changed="$({status})"; if [ -n "$changed" ]; then printf "%s\\n" {shlex.quote(message)} "$changed" >&2;'
        " exit 1; fi"
    )


def _kept(path: str) -> str:
    return (
        f"{path} is now the manifest repository, but these files differ from the published commit; they were kept "
        "as they were and the deploy stops here (commit them there, or remove them, then deploy again):"
    )
