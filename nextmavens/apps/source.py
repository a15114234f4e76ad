"""An app's source on the host: an uploaded `git archive` extracted safely, a git URL cloned, a host path's commit
archived; and the few files detection reads.

Extraction refuses, before writing anything: absolute names, `..`, links (symbolic or hard) whose target leaves the
folder, devices and FIFOs, more than MAX_MEMBERS entries, more than MAX_UNPACKED_BYTES unpacked; then Python's
`data` filter checks each entry again as it is written. Git runs with argv lists and the one controlled environment
(gitrepo.py); a ref never starts with `-` (the manifest's validation) and is passed after `--` where git allows it.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

from nextmavens.apps.detect import READ_FILES, READ_LIMIT, Source
from nextmavens.gitrepo import git_environment

MAX_ARCHIVE_BYTES = 100 * 1024 * 1024
MAX_UNPACKED_BYTES = 500 * 1024 * 1024
MAX_MEMBERS = 50_000
GIT_TIMEOUT_S = 300
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv"}


class SourceError(ValueError):
    pass


def archive_commit(data: bytes) -> str:
    """The commit a `git archive` of a commit records in its pax header, else `upload-<sha256[:12]>`."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            comment = tar.pax_headers.get("comment", "")
    except tarfile.TarError:
        comment = ""
    if _COMMIT.fullmatch(comment):
        return comment
    return "upload-" + hashlib.sha256(data).hexdigest()[:12]


def extract_archive(data: bytes, target: Path) -> None:
    """Unpack a tar (plain or gzip) into the empty folder `target`; SourceError naming the first bad entry."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise SourceError(f"the archive is larger than {MAX_ARCHIVE_BYTES // (1024 * 1024)} MiB")
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError as exc:
        raise SourceError(f"not a tar archive: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except tarfile.TarError as exc:
            raise SourceError(f"a broken tar archive: {exc}") from None
        if len(members) > MAX_MEMBERS:
            raise SourceError(f"the archive holds more than {MAX_MEMBERS} entries")
        total = 0
        for member in members:
            _check_member(member)
            total += max(member.size, 0)
            if total > MAX_UNPACKED_BYTES:
                raise SourceError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MiB")
        try:
            tar.extractall(target, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise SourceError(f"refused while unpacking: {exc}") from None


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise SourceError(f"the archive holds an absolute path: {name!r}")
    if ".." in path.parts:
        raise SourceError(f"the archive holds a path with '..': {name!r}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise SourceError(f"the archive holds a device, FIFO or other special file: {name!r}")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        resolved = link if member.islnk() else path.parent / link
        if link.is_absolute() or _escapes(resolved):
            raise SourceError(f"the archive holds a link out of the source: {name!r} -> {member.linkname!r}")


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "protocol.file.allow=user", *args],
        cwd=cwd,
        env=git_environment(),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise SourceError(f"git {args[0]} failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return result.stdout


def clone(url: str, ref: str | None, target: Path) -> str:
    """A shallow clone of `url` at `ref` (a branch or tag; the remote's HEAD without one) into `target`; its commit."""
    argv = ["clone", "--quiet", "--depth", "1", "--no-tags"]
    if ref:
        argv += ["--branch", ref]
    _git(*argv, "--", url, str(target))
    return _git("rev-parse", "HEAD", cwd=target).strip()


def archive_path(folder: Path, ref: str | None, target: Path) -> str:
    """The commit `ref` (HEAD without one) of the git repository at `folder`, its tree unpacked into `target`: never
    the working tree's uncommitted changes."""
    wanted = ref or "HEAD"
    commit = _git("rev-parse", "--verify", "--end-of-options", f"{wanted}^{{commit}}", cwd=folder).strip()
    data = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=folder,
        env=git_environment(),
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if data.returncode != 0:
        raise SourceError(f"git archive failed: {data.stderr.decode(errors='replace').strip()[-400:]}")
    extract_archive(data.stdout, target)
    return commit


def read_source(root: Path) -> Source:
    """Every file's name (skipping .git, node_modules, caches) and the text of the files detection reads."""
    names: set[str] = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in relative.parts) or path.is_dir():
            continue
        names.add(relative.as_posix())
    texts = {}
    for name in READ_FILES:
        path = root / name
        if name in names and path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                texts[name] = handle.read(READ_LIMIT).decode("utf-8", errors="replace")
    return Source(frozenset(names), texts)
