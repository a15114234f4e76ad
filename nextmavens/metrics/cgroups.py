"""A container's CPU time and memory read straight from its cgroup's files: the cheapest way (a few small reads; the
Engine API's stats endpoint costs the engine a sampling of its own).

cgroup v2 (a unified hierarchy: `cpu.stat`'s usage_usec, `memory.current`) as Docker lays it out with the systemd
driver (`system.slice/docker-<id>.scope`) or the cgroupfs driver (`docker/<id>`); cgroup v1 (`cpuacct.usage` in ns,
`memory.usage_in_bytes`, one hierarchy per controller), as on the sandbox host. Parsing is pure; `CgroupReader`
finds a container's folder once and remembers it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # cumulative CPU time
    memory_bytes: int


def read_small(path: Path) -> str:
    """A kernel file's text in three system calls (Path.read_text's text layer costs several times that, and the
    collector reads two files per container every minute)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 8192).decode()
    finally:
        os.close(fd)


def parse_cpu_stat(text: str) -> float:
    """cgroup v2 cpu.stat -> cumulative CPU seconds."""
    if text.startswith("usage_usec "):  # the first line, as the kernel writes it
        return int(text[11 : text.index("\n", 11) if "\n" in text else None]) / 1_000_000
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1_000_000
    raise ValueError("cpu.stat has no usage_usec line")


def v2_folders(root: Path, container_id: str) -> list[Path]:
    return [root / "system.slice" / f"docker-{container_id}.scope", root / "docker" / container_id]


def v1_folders(root: Path, controller: str, container_id: str) -> list[Path]:
    base = root / controller
    return [base / "system.slice" / f"docker-{container_id}.scope", base / "docker" / container_id]


@dataclass(frozen=True)
class Files:
    cpu: Path
    memory: Path
    v2: bool


class CgroupReader:
    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.found: dict[str, Files | None] = {}

    def locate(self, container_id: str) -> Files | None:
        for folder in v2_folders(self.root, container_id):
            if (folder / "cpu.stat").is_file():
                return Files(folder / "cpu.stat", folder / "memory.current", True)
        for cpu_dir, mem_dir in zip(
            v1_folders(self.root, "cpuacct", container_id), v1_folders(self.root, "memory", container_id), strict=True
        ):
            if (cpu_dir / "cpuacct.usage").is_file():
                return Files(cpu_dir / "cpuacct.usage", mem_dir / "memory.usage_in_bytes", False)
        return None

    def usage(self, container_id: str) -> Usage | None:
        """None when the container has no cgroup folder here (gone, or an unknown layout)."""
        files = self.found.get(container_id)
        if files is None:
            files = self.locate(container_id)
            if files is None:
                return None
            self.found[container_id] = files
        try:
            cpu_text = read_small(files.cpu)
            memory = int(read_small(files.memory))
            cpu = parse_cpu_stat(cpu_text) if files.v2 else int(cpu_text.strip()) / 1e9
        except (OSError, ValueError):
            self.found.pop(container_id, None)  # stopped or replaced: look again next time
            return None
        return Usage(cpu, memory)

    def forget(self, keep: set[str]) -> None:
        for container_id in set(self.found) - keep:
            del self.found[container_id]
