"""The locked wheels for one host's Python, fetched on the deploying machine, for a host that cannot reach the package
index itself (group data nextmavens_deps_from = "wheelhouse"): the deploy uploads them and the host's pip installs
from them alone (--no-index). pip here uses its own configuration (index, certificates); nothing names an index.

The wheels are cached per target under the repository root, so a deploy whose lock did not change needs no
network: a pinned version is fetched only when no cached file has one of its hashes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nextmavens.host.lockfile import Pin, host_environment, pins_for
from nextmavens.templates import REPO_ROOT

CACHE_DIR = ".nextmavens/wheelhouse"  # under the repository root (git-ignored)
_OLDEST_MANYLINUX_GLIBC = 5  # manylinux_2_5 (manylinux1)
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


class WheelhouseError(RuntimeError):
    """The locked wheels could not be had for the host's Python; the message says which and why."""


@dataclass(frozen=True)
class PythonTarget:
    """A host's python3 as its fact reports it: CPython `version` (major.minor) on glibc `glibc` (major.minor)."""

    version: str
    machine: str
    glibc: str

    @property
    def name(self) -> str:
        return f"cp{self.version.replace('.', '')}-{self.machine}-glibc{self.glibc}"

    def platform_tags(self) -> list[str]:
        """The manylinux tags the host's pip accepts, newest first (a wheel for glibc 2.N runs on 2.M >= N)."""
        major, minor = (int(part) for part in self.glibc.split("."))
        if major != 2:
            raise WheelhouseError(f"the host's glibc {self.glibc} is not 2.x: no manylinux wheel is known to fit")
        tags = []
        for n in range(minor, _OLDEST_MANYLINUX_GLIBC - 1, -1):
            tags.append(f"manylinux_2_{n}_{self.machine}")
            if n in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[n]}_{self.machine}")
        return tags

    def pip_download_args(self) -> list[str]:
        abi = f"cp{self.version.replace('.', '')}"
        args = ["--python-version", self.version, "--implementation", "cp"]
        for value in (abi, "abi3", "none"):
            args += ["--abi", value]
        for tag in self.platform_tags():
            args += ["--platform", tag]
        return args


def locked_wheels(pins: Sequence[Pin], target: PythonTarget, root: Path = REPO_ROOT) -> Path:
    """A directory holding exactly one wheel of each pin that applies to `target`, and nothing else."""
    wanted = pins_for(pins, host_environment(target.version, target.machine))
    cache = root / CACHE_DIR / target.name
    cache.mkdir(parents=True, exist_ok=True)
    if _missing(wanted, _digests(cache)):
        _download(wanted, target, cache)
    have = _digests(cache)
    missing = _missing(wanted, have)
    if missing:
        raise WheelhouseError(
            f"no wheel for Python {target.version} on {target.machine} (glibc {target.glibc}) matched the lock's hashes"
            f" of: {', '.join(missing)}"
        )
    keep = {digest for pin in wanted for digest in pin.hashes}
    for digest, path in have.items():
        if digest not in keep:
            path.unlink()  # a wheel of an earlier lock: the host's wheelhouse holds the current lock's only
    return cache


def _digests(directory: Path) -> dict[str, Path]:
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in sorted(directory.glob("*.whl"))}


def _missing(pins: Sequence[Pin], have: dict[str, Path]) -> list[str]:
    return [f"{pin.name}=={pin.version}" for pin in pins if not any(h in have for h in pin.hashes)]


def _download(pins: Sequence[Pin], target: PythonTarget, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="nextmavens-wheelhouse-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(pin.requirement_line() + "\n" for pin in pins), encoding="utf-8")
        argv = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input",
            "--no-deps", "--only-binary=:all:", "--require-hashes", *target.pip_download_args(),
            "--dest", str(dest), "--requirement", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise WheelhouseError(f"pip download of the locked wheels for {target.name} failed:\n{tail}")
