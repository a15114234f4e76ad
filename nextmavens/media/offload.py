"""One offload pass of a project's storage folder to Cloudinary, as its manifest's `media_offload` asks: each regular
file matching one of `paths` and not modified for `older_than_days` is uploaded under `nextmavens/<ref>/`, and deleted
here only once Cloudinary's answer proves it holds the same bytes (size and MD5 `etag`) and the file has not changed
since it was read. Its URL is recorded in `<folder>/.offloaded.json` (relative path -> URL), written atomically, and,
when the policy declares `references`, written over the file's path in those columns of the project's database
(media/references.py: as its owner role, committed) before the file is deleted. Links are never followed; a failed or
unverified upload, or references that could not be rewritten, leave the local file.

    select(files, policy, now)  pure: which of (relative path, size, mtime) to offload
    offload_pass(root, ref, policy, client, now, owner_login)  the pass; its report says whether every candidate went
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nextmavens.files import write_atomic
from nextmavens.manifest.models import MediaOffload
from nextmavens.media.cloudinary import CloudinaryClient, CloudinaryError
from nextmavens.media.references import (
    STATEMENT_TIMEOUT_MS,
    WATCHDOG_S,
    ReferencesError,
    replace_references,
)

log = logging.getLogger("nextmavens.media")

RECORD = ".offloaded.json"
DAY_S = 86400
PASS_DEADLINE_S = 15 * 60.0  # one project's pass; the storage monitor's prune waits for every project's
MAX_FILE_BYTES = 100 * 1024 * 1024  # Cloudinary's plain upload limit on paid plans; larger files stay local
IMAGE = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp", ".tif", ".tiff", ".svg", ".heic"}
VIDEO = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".mp3", ".wav", ".ogg", ".m4a"}
_PUBLIC_ID = re.compile(r"[^A-Za-z0-9_./-]")


@dataclass(frozen=True)
class LocalFile:
    relative: str  # POSIX path under the storage folder
    size: int
    mtime: float


@dataclass
class OffloadReport:
    offloaded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)
    bytes_freed: int = 0
    references: int = 0  # rows whose path became the URL

    @property
    def ok(self) -> bool:
        return not self.failed


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/` any folders (none too), `**` anything, `*` and `?` within one folder, `[...]` (`[!...]`) a class."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out, i = out + "[" + body.replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out, re.S)


def matches(relative: str, patterns: Iterable[str]) -> bool:
    return any(glob_regex(p).fullmatch(relative) for p in patterns)


def select(files: Iterable[LocalFile], policy: MediaOffload, now: float) -> list[LocalFile]:
    cutoff = now - policy.older_than_days * DAY_S
    return [
        f
        for f in files
        if f.relative != RECORD and f.mtime <= cutoff and f.size <= MAX_FILE_BYTES and matches(f.relative, policy.paths)
    ]


def walk(root: Path) -> Iterator[LocalFile]:
    """Regular files under `root`, links neither followed nor listed."""
    for folder, folders, names in os.walk(root, followlinks=False):
        folders[:] = [d for d in folders if not (Path(folder) / d).is_symlink()]
        for name in names:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                yield LocalFile(path.relative_to(root).as_posix(), info.st_size, info.st_mtime)


def resource_type(relative: str) -> str:
    suffix = Path(relative).suffix.lower()
    return "image" if suffix in IMAGE else "video" if suffix in VIDEO else "raw"


def public_id(relative: str) -> str:
    """The asset's name: the relative path (without its extension for images and videos, as Cloudinary names them),
    characters it does not take replaced."""
    kind = resource_type(relative)
    name = str(Path(relative).with_suffix("")) if kind != "raw" else relative
    return _PUBLIC_ID.sub("_", name)


def _read_unchanged(path: Path, expected: LocalFile) -> bytes | None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != expected.size or info.st_mtime != expected.mtime:
            return None
        return handle.read(expected.size + 1)


def _login(owner_login: Callable[[], str] | None) -> str:
    if owner_login is None:
        raise ReferencesError("references are declared but the pass has no login to the project's database")
    try:
        return owner_login()
    except ReferencesError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to find the login keeps the files
        raise ReferencesError(f"no login to the project's database ({type(exc).__name__})") from None


def offload_pass(
    root: Path,
    ref: str,
    policy: MediaOffload,
    client: CloudinaryClient,
    now: float,
    owner_login: Callable[[], str] | None = None,
    deadline_s: float = PASS_DEADLINE_S,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
) -> OffloadReport:
    """`owner_login`: the conninfo of the project's owner role into its database, asked once, before any upload,
    when the policy declares references and a file is due (without it, or when it fails, no file is uploaded or
    deleted). The pass ends after `deadline_s`: files not reached by then are reported as kept and wait for the
    next pass."""
    end = time.monotonic() + deadline_s
    report = OffloadReport()
    if not root.is_dir() or root.is_symlink():
        return report
    due = select(walk(root), policy, now)
    conninfo = ""
    if policy.references and due:
        try:
            conninfo = _login(owner_login)
        except ReferencesError as exc:  # every due file would be uploaded only to be kept here
            report.failed.extend((item.relative, f"{exc}: kept here") for item in due)
            due = []
    record_path = root / RECORD
    record: dict[str, str] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    folder = f"nextmavens/{ref}"
    for item in due:
        path = root / item.relative
        remaining = end - time.monotonic()
        if remaining <= 0:
            report.failed.append((item.relative, f"not tried: the pass reached its {deadline_s:g} s deadline"))
            continue
        try:
            content = _read_unchanged(path, item)
        except OSError as exc:
            report.failed.append((item.relative, f"unreadable ({exc.strerror})"))
            continue
        if content is None or len(content) != item.size:
            report.failed.append((item.relative, "changed while being read"))
            continue
        digest = hashlib.md5(content).hexdigest()  # noqa: S324 - compared with Cloudinary's etag, an MD5
        kind = resource_type(item.relative)
        try:
            uploaded = client.upload(content, public_id(item.relative), folder, kind, path.name)
        except CloudinaryError as exc:
            report.failed.append((item.relative, str(exc)))
            continue
        if uploaded.bytes != len(content) or uploaded.etag != digest:
            report.failed.append((item.relative, "Cloudinary holds other bytes (size or checksum differ): kept here"))
            continue
        try:
            if _read_unchanged(path, item) is None:
                report.failed.append((item.relative, "changed after the upload: kept here"))
                continue
        except OSError as exc:
            report.failed.append((item.relative, f"unreadable ({exc.strerror})"))
            continue
        record[item.relative] = uploaded.secure_url
        write_atomic(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n", 0o644)  # before the delete
        if policy.references:
            try:
                report.references += replace_references(
                    conninfo,
                    policy.references,
                    item.relative,
                    uploaded.secure_url,
                    statement_timeout_ms=statement_timeout_ms,
                    watchdog_s=max(0.1, min(WATCHDOG_S, end - time.monotonic())),
                )
            except ReferencesError as exc:
                report.failed.append((item.relative, f"{exc}: kept here"))
                continue
        path.unlink()
        report.offloaded.append(item.relative)
        report.bytes_freed += item.size
    for relative, why in report.failed:
        log.warning("offload of %s/%s: %s", ref, relative, why)
    return report
