"""The service's one write path: change a manifest file in the manifest repository, validate the whole set with
the loader a hand-written manifest goes through, apply it through the engine (the apply lock), and only then
commit the file with the member as author. A change that is invalid or whose apply fails leaves the file as it
was and no commit.

The projects folder must be the root of a git work tree; the service never pushes or pulls. Writes of this process are
serialized by one lock, and the engine's apply lock serializes them with every other applier. Git runs from an
argv list with a controlled environment: no system or user configuration, no hooks, no signing.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nextmavens.files import write_atomic
from nextmavens.gitrepo import git, git_ok, is_repository_root, revision
from nextmavens.manifest.loader import ManifestErrors, ManifestSet, load_manifests

# The write path applies through an applier (in-process or privileged); a rejected set is its error as well.
from nextmavens.platform.privileged import Applied, Applier, ManifestRejected

log = logging.getLogger("nextmavens.platform")

COMMITTER = ("NextMavens platform", "platform@nextmavens.invalid")
MANIFEST_MODE = 0o644  # manifests hold no secret
# Every write of this process, from reading the current set to the commit.
_WRITES = threading.Lock()


class RepositoryMissing(Exception):
    """The projects folder is not a git work tree: the service has nowhere to record a change."""


class Conflict(Exception):
    """The change cannot be made as asked (the file exists, or holds uncommitted edits): `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Given the current (valid) set and the file's text (None when absent): the new text, or None for "no change".
Render = Callable[[ManifestSet, str | None], str | None]


@dataclass(frozen=True)
class Written:
    path: str  # relative to the projects folder
    commit: str | None  # None: nothing changed, nothing applied
    applied: Applied | None
    manifests: ManifestSet  # the set as it now stands


def author_ident(member: str) -> str:
    """`Name <email>` for git from a member's email; git's own delimiters and line breaks are dropped."""
    clean = "".join(ch for ch in member if ch not in "<>\n\r\0").strip() or "unknown"
    return f"{clean} <{clean}>"


class ManifestRepository:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        committer_name, committer_email = COMMITTER
        return git(self.folder, "-c", f"user.name={committer_name}", "-c", f"user.email={committer_email}", *args)

    def _git_ok(self, *args: str) -> str:
        committer_name, committer_email = COMMITTER
        return git_ok(self.folder, "-c", f"user.name={committer_name}", "-c", f"user.email={committer_email}", *args)

    def ready(self) -> bool:
        # The folder must be the repository's root: a projects/ folder inside the operator's own checkout is not
        # the manifest repository, and the service commits nothing there.
        return is_repository_root(self.folder)

    def change(self, relative: str, render: Render, applier: Applier, member: str, message: str) -> Written:
        """Write `relative` (`<org>/<file>.yaml`) as `render` says, validate, apply (`applier`: the engine in this
        process, or the privileged apply), commit as `member`."""
        with _WRITES:
            if not self.ready():
                raise RepositoryMissing(
                    f"the projects folder {self.folder} is not the root of a git work tree: the manifest repository is "
                    "not set up"
                )
            try:
                current = load_manifests(self.folder)
            except ManifestErrors as exc:
                problems = len(exc.errors)
                raise Conflict(
                    "manifests_invalid",
                    f"the manifests in the repository are invalid ({problems} problem(s); `nextmavens validate` "
                    "lists them): fix them before any change",
                ) from None
            path = self.folder / relative
            original = path.read_bytes() if path.is_file() else None
            text = render(current, original.decode("utf-8") if original is not None else None)
            if text is None:
                return Written(relative, None, None, current)
            if self._git_ok("status", "--porcelain", "--", relative).strip():
                raise Conflict("uncommitted", f"{relative} has uncommitted changes in the manifest repository")
            created_folder = not path.parent.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text, MANIFEST_MODE, exclusive=original is None)
            try:
                try:
                    manifests = load_manifests(self.folder)
                except ManifestErrors as exc:
                    raise ManifestRejected([str(error) for error in exc.errors]) from None
                # HEAD and dirty: the file is applied before it is committed
                applied = applier.apply(manifests, revision=revision(self.folder))
                self._git_ok("add", "--", relative)
                # Only this file: whatever else the operator staged stays out of the member's commit.
                author = f"--author={author_ident(member)}"
                self._git_ok("commit", "--quiet", "--no-verify", "-m", message, author, "--", relative)
                commit = self._git_ok("rev-parse", "HEAD").strip()
            except BaseException:
                self._restore(path, relative, original, created_folder)
                raise
            log.info("committed %s as %s (%s)", relative, commit[:12], message.splitlines()[0])
            return Written(relative, commit, applied, manifests)

    def _restore(self, path: Path, relative: str, original: bytes | None, created_folder: bool) -> None:
        """Put the file (and the index) back as they were before the change."""
        if original is None:
            path.unlink(missing_ok=True)
            if created_folder:
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
        else:
            write_atomic(path, original, MANIFEST_MODE)
        # A failed commit may leave the file staged: unstage it whether or not HEAD exists yet.
        if self._git("reset", "--quiet", "--", relative).returncode != 0:
            self._git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", relative)
