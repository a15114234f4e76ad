"""The nextmavens wheel the deploy uploads: the newest matching the group data glob, built locally
with `pip wheel` when none exists (the host may not reach PyPI, so nothing is fetched there)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from nextmavens.host.render import REPO_ROOT


def _matches(pattern: str, root: Path) -> list[Path]:
    path = Path(pattern)
    base, glob = (path.parent, path.name) if path.is_absolute() else (root, pattern)
    return sorted(base.glob(glob), key=lambda p: p.stat().st_mtime)


def find_or_build_wheel(pattern: str, root: Path = REPO_ROOT) -> Path:
    """`pattern` is relative to the repository root, or absolute."""
    wheels = _matches(pattern, root)
    if wheels:
        return wheels[-1]
    out_dir = (root / pattern).parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out_dir),
            str(root),
        ],
        check=True,
    )
    wheels = _matches(pattern, root)
    if not wheels:
        raise FileNotFoundError(f"no wheel matches {pattern!r} after building one into {out_dir}")
    return wheels[-1]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_sha256(directory: Path) -> str:
    """A digest of every file's relative path and content under `directory`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
