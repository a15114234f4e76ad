"""The nextmavens wheel the deploy uploads (the host may not reach PyPI, so nothing is fetched there).

By default it is built on every deploy from the checkout's committed sources (git HEAD: uncommitted
edits never reach a host, and two deploys of one commit upload the same bytes), in a clean directory
(no stale build/), with a fixed SOURCE_DATE_EPOCH; the host reinstalls only when the code changed.
Outside a git checkout the working tree is used. Group data `nextmavens_wheel` may name a prebuilt
wheel instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from nextmavens.templates import REPO_ROOT

FIXED_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can hold
BUILD_DIR = ".nextmavens/wheels"  # under the repository root (git-ignored)


def build_wheel(root: Path = REPO_ROOT, out_dir: Path | None = None) -> Path:
    out = out_dir or root / BUILD_DIR
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nextmavens-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        _export_sources(root, src)
        built = Path(tmp) / "dist"
        env = {**os.environ, "SOURCE_DATE_EPOCH": FIXED_EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(built), str(src)]
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        (wheel,) = built.glob("nextmavens-*.whl")
        target = out / wheel.name
        shutil.copyfile(wheel, target)
    return target


@cache  # one build per deploy run, shared by the tasks that need it
def committed_revision(root: Path) -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout."""
    if shutil.which("git") is None:
        return None
    result = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _export_sources(root: Path, dest: Path) -> None:
    if committed_revision(root):
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", "HEAD", "pyproject.toml", "nextmavens"],
            capture_output=True,
            check=True,
        )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
        return
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(root / "nextmavens", dest / "nextmavens", ignore=ignore)


def resolve_wheel(setting: str | None, root: Path = REPO_ROOT) -> Path:
    """The wheel to upload: `setting` (a path, relative to the repository root or absolute), or a
    fresh build of this checkout when it is None."""
    if setting is None:
        return build_wheel(root)
    path = Path(setting) if Path(setting).is_absolute() else root / setting
    if not path.is_file():
        raise FileNotFoundError(f"group data nextmavens_wheel: no such file {path}")
    return path


def wheel_has_module(wheel: Path, module_path: str) -> bool:
    with zipfile.ZipFile(wheel) as archive:
        return module_path in archive.namelist()


def wheel_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines (PEP 508 strings, extras' included with their `extra ==` marker)."""
    with zipfile.ZipFile(wheel) as archive:
        found = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        if len(found) != 1:
            raise ValueError(f"{wheel}: not a wheel (no single .dist-info/METADATA)")
        text = archive.read(found[0]).decode("utf-8")
    headers = text.split("\n\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in headers.splitlines() if line.startswith("Requires-Dist:")]


def committed_file(relpath: str, root: Path = REPO_ROOT) -> bytes:
    """A file as HEAD holds it (what the deploy's wheel is built from), or the working tree's outside git."""
    if committed_revision(root):
        return subprocess.run(
            ["git", "-C", str(root), "show", f"HEAD:{relpath}"], capture_output=True, check=True
        ).stdout
    return (root / relpath).read_bytes()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_sha256(directory: Path) -> str:
    """A digest of every file's relative path and content under `directory`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
