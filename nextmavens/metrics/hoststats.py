"""The host's memory, CPU and disk from /proc and statvfs (parsing pure)."""

from __future__ import annotations

import os
from pathlib import Path


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, available) bytes."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * 1024
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))


def parse_proc_stat(text: str) -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat's first line."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = float(sum(fields[:8]))
    return total - idle, total


def host_sample(
    proc: Path = Path("/proc"), disks: tuple[str, ...] = ("/",)
) -> tuple[dict[str, float], tuple[float, float]]:
    """Gauges ({mem_used_pct, mem_used_mb, disk_used_pct:<path>, disk_free_gb:<path>}) and the CPU counters."""
    total, available = parse_meminfo((proc / "meminfo").read_text())
    gauges = {
        "mem_used_pct": round(100.0 * (total - available) / total, 2),
        "mem_used_mb": round((total - available) / 2**20, 1),
    }
    for path in disks:
        stat = os.statvfs(path)
        size = stat.f_blocks * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        used = size - stat.f_bfree * stat.f_frsize
        gauges[f"disk_used_pct:{path}"] = round(100.0 * used / max(used + free, 1), 2)
        gauges[f"disk_free_gb:{path}"] = round(free / 2**30, 2)
    return gauges, parse_proc_stat((proc / "stat").read_text())
