"""The real postgres-meta for the sandbox, installed on the host: the guest's proxy lets only Debian through.

`npm install` runs here (no lock file, no install scripts, production dependencies only) from the pin in
images/meta/package.json, into the sandbox's cache. The installed version is checked against the pin, npm's
hidden lock file (it names the registry it resolved from), source maps and type declarations are left out,
and the tree is packed as one reproducible tar.gz that the meta image's build context carries (its
Dockerfile ADDs it).
"""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from pathlib import Path

from .config import SandboxConfig
from .util import log, run

PACKAGE = "@supabase/postgres-meta"
PACKAGE_JSON = Path(__file__).parent / "images" / "meta" / "package.json"
BUNDLE_NAME = "postgres-meta.tar.gz"
PACK_FORMAT = 2  # bump when what pack() leaves out changes, so a cached bundle is packed again
# npm's record of where each package came from (registry host names); nothing in the image reads it
_LEFT_OUT = frozenset({"node_modules/.package-lock.json"})
# Source maps and TypeScript declarations: Node never loads them, and they are half the tree (~100 of 190 MB)
_LEFT_OUT_SUFFIXES = (".map", ".d.ts", ".d.mts", ".d.cts")


def pinned_version(package_json: Path = PACKAGE_JSON) -> str:
    """The exact version the committed package.json pins (a range would let npm pick another)."""
    version = str(json.loads(package_json.read_text())["dependencies"][PACKAGE])
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{package_json}: {PACKAGE} must be pinned to an exact version, got {version!r}")
    return version


def install_argv(prefix: Path) -> list[str]:
    return [
        "npm", "install", "--prefix", str(prefix), "--no-package-lock", "--ignore-scripts", "--omit=dev",
        "--no-audit", "--no-fund", "--no-update-notifier",
    ]  # fmt: skip


def installed_version(prefix: Path) -> str:
    manifest = prefix / "node_modules" / PACKAGE / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.name in _LEFT_OUT or (info.isfile() and info.name.endswith(_LEFT_OUT_SUFFIXES)):
        return None
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def pack(prefix: Path, out: Path) -> None:
    """node_modules as a tar.gz with sorted names, no owners and no times: the same tree, the same bytes."""
    partial = out.with_name(out.name + ".partial")
    root = prefix / "node_modules"
    paths = sorted(root.rglob("*"))
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in [root, *paths]:
                arcname = str(path.relative_to(prefix))
                tar.add(path, arcname=arcname, recursive=False, filter=_normalise)
    partial.rename(out)


def ensure_bundle(cfg: SandboxConfig) -> Path:
    """The packed postgres-meta tree for the pinned version, installed once and cached."""
    version = pinned_version()
    out = cfg.npm_cache / f"postgres-meta-{version}-p{PACK_FORMAT}.tar.gz"
    if out.is_file():
        return out
    for old in cfg.npm_cache.glob("postgres-meta-*.tar.gz"):
        old.unlink()
    prefix = cfg.npm_cache / f"postgres-meta-{version}"
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.mkdir(parents=True)
    shutil.copyfile(PACKAGE_JSON, prefix / "package.json")
    log(f"npm install {PACKAGE}@{version} on the host (the guest reaches only Debian)")
    run(install_argv(prefix), quiet=True)
    got = installed_version(prefix)
    if got != version:
        raise RuntimeError(f"npm installed {PACKAGE} {got}, not the pinned {version}")
    pack(prefix, out)
    shutil.rmtree(prefix)
    return out
