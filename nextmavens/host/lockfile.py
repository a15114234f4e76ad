"""The host venv's lock file (requirements/host.lock, made by scripts/lock-host-deps): parsed, narrowed to one
host's Python, and compared with the requirements it must satisfy. Pure: text in, data out.

The lock is pip's hash-checking requirements format: `name==version ; marker` followed by `--hash=sha256:...`
continuation lines, and comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK_PATH = "requirements/host.lock"  # relative to the repository root

# The Pythons and machines a host runs (Debian 12: 3.11, Ubuntu 24.04: 3.12, Debian 13: 3.13): the lock serves each.
HOST_PYTHONS = ("3.11", "3.12", "3.13")
HOST_MACHINES = ("x86_64", "aarch64")


class LockError(ValueError):
    """A lock line that is not `name==version [; marker]` with sha256 hashes; the message names the line."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (lower case, dashes)
    version: str
    marker: str  # '' when the pin applies everywhere
    hashes: tuple[str, ...]  # sha256 hex digests of the version's files

    def applies(self, env: Mapping[str, str]) -> bool:
        return not self.marker or Marker(self.marker).evaluate(dict(env))

    def requirement_line(self) -> str:
        """The pin without its marker, for a pip that evaluates no marker of the host (pip download)."""
        return f"{self.name}=={self.version} " + " ".join(f"--hash=sha256:{h}" for h in self.hashes)


def parse_lock(text: str, source: str = LOCK_PATH) -> list[Pin]:
    pins: list[Pin] = []
    for number, logical in _logical_lines(text):
        head, *options = logical.split(" --")
        hashes: list[str] = []
        for option in options:
            kind, _, digest = option.strip().partition("=sha256:")
            if kind != "hash" or len(digest) != 64:
                raise LockError(f"{source}:{number}: expected --hash=sha256:<64 hex digits>, got --{option.strip()}")
            hashes.append(digest)
        try:
            req = Requirement(head.strip())
        except InvalidRequirement as err:
            raise LockError(f"{source}:{number}: {err}") from None
        exact = [spec for spec in req.specifier if spec.operator == "=="]
        if len(exact) != 1 or len(req.specifier) != 1:
            raise LockError(f"{source}:{number}: {req.name} is not pinned to one version with ==")
        if not hashes:
            raise LockError(f"{source}:{number}: {req.name} has no --hash (pip installs it only with hashes)")
        pins.append(Pin(canonicalize_name(req.name), exact[0].version, str(req.marker or ""), tuple(hashes)))
    return pins


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, the line with its backslash continuations joined), comments and blanks left out."""
    start, parts = 0, list[str]()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line.strip())
        joined = " ".join(p for p in parts if p)
        parts = []
        if joined:
            yield start, joined


def host_environment(python: str, machine: str) -> dict[str, str]:
    """Marker variables of a CPython `python` (major.minor) on Linux `machine`."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "linux",
        "extra": "",
    }


def host_environments() -> list[dict[str, str]]:
    return [host_environment(python, machine) for python in HOST_PYTHONS for machine in HOST_MACHINES]


def pins_for(pins: Iterable[Pin], env: Mapping[str, str]) -> list[Pin]:
    return [pin for pin in pins if pin.applies(env)]


def disagreements(requirements: Iterable[str], pins: Iterable[Pin], envs: Iterable[Mapping[str, str]]) -> list[str]:
    """What keeps the lock from satisfying `requirements` (PEP 508 strings: pyproject's `dependencies`, or a wheel's
    Requires-Dist) on each host environment: a requirement with no pin there, a pin outside its range, a name
    pinned twice. Requirements behind an extra (`extra == "dev"`) are not the host's. Empty when they agree."""
    pins = list(pins)
    problems: list[str] = []
    for env in envs:
        where = f"Python {env['python_version']} on {env['platform_machine']}"
        active: dict[str, Pin] = {}
        for pin in pins_for(pins, env):
            if pin.name in active:
                problems.append(f"{pin.name} is pinned twice for {where}")
            active[pin.name] = pin
        for line in requirements:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(dict(env)):
                continue
            found = active.get(canonicalize_name(req.name))
            if found is None:
                problems.append(f"{req.name} ({line}) has no pin for {where}")
            elif not req.specifier.contains(Version(found.version), prereleases=True):
                problems.append(f"{req.name}=={found.version} is outside {line!r}")
    return list(dict.fromkeys(problems))


def require_agreement(
    requirements: Iterable[str], pins: Iterable[Pin], envs: Iterable[Mapping[str, str]], what: str
) -> None:
    """Refuse (LockError) a lock that does not satisfy `what`'s requirements, saying how to fix it."""
    problems = disagreements(requirements, pins, envs)
    if problems:
        raise LockError(
            f"{LOCK_PATH} does not satisfy the dependencies of {what} (run scripts/lock-host-deps and commit the"
            " lock):\n  " + "\n  ".join(problems)
        )
