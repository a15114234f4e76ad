"""nginx's structured access log for metrics: its format, reading it incrementally, and a minute's figures.

The edge renders `log_format nm_metrics` (LOG_FORMAT, JSON with nginx's own escaping) and writes every API and
custom-domain request to the file the edge settings name (`metrics_log`). A line carries the time, the host asked
for, the project when nginx knows it from a custom domain's map (else the host is `<ref>.<api domain>`), the
method, the path without its query, the status and the request time.

`LogFollower` keeps the file open between reads and goes on after a rotation: a renamed file is read to its end
before the new one is opened (logrotate's `create`, nginx reopening on USR1), a truncated one from its start
(`copytruncate`). Parsing and the minute's figures are pure.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nextmavens.edge.logformat import FORMAT_NAME, LOG_FORMAT

__all__ = ["FORMAT_NAME", "LOG_FORMAT", "Hit", "LogFollower", "Traffic", "parse_line", "traffic_by_ref"]

# Bytes read per call at most (a minute at 500 requests a second is about 4 MB): a larger burst is read over the
# next minutes, not at once, so the collector's memory stays bounded; those lines count in a later minute.
READ_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Hit:
    ts: float
    host: str
    project: str
    method: str
    path: str
    status: int
    seconds: float


def parse_line(line: bytes) -> Hit | None:
    """One log line; None for a line that is not the format's (a torn write, another format)."""
    try:
        item = json.loads(line)
        return Hit(
            float(item["t"]),
            str(item["h"]).lower(),
            str(item.get("p") or ""),
            str(item["m"]),
            str(item["u"]),
            int(item["s"]),
            float(item["rt"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def ref_of(hit: Hit, api_domain: str) -> str | None:
    if hit.project:
        return hit.project
    suffix = "." + api_domain.lower()
    if hit.host.endswith(suffix):
        ref = hit.host[: -len(suffix)]
        return ref if ref and "." not in ref else None
    return None


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


@dataclass
class Traffic:
    """One project's requests over one interval."""

    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error_paths: Counter[str] = field(default_factory=Counter)

    def add(self, hit: Hit) -> None:
        self.requests += 1
        if 400 <= hit.status < 500:
            self.client_errors += 1
        elif hit.status >= 500:
            self.server_errors += 1
            self.error_paths[hit.path] += 1
        self.latencies.append(hit.seconds)

    def figures(self) -> dict[str, float]:
        """Counts, and latency percentiles in ms when there were requests (none is no latency, not zero)."""
        counts = {
            "requests": float(self.requests),
            "http_4xx": float(self.client_errors),
            "http_5xx": float(self.server_errors),
        }
        if not self.latencies:
            return counts
        ordered = sorted(self.latencies)
        return counts | {
            f"p{int(q * 100)}_ms": round(percentile(ordered, q) * 1000, 1) for q in (0.50, 0.95, 0.99)
        }


def _items(lines: list[bytes]) -> list[object]:
    """The lines' JSON objects: parsed as one array (one call into the C parser instead of one per line: most of
    the collector's CPU at a few thousand lines a minute), line by line only when some line is torn."""
    try:
        items: list[object] = json.loads(b"[" + b",".join(lines) + b"]")
        return items
    except ValueError:
        parsed: list[object] = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                parsed.append(None)
        return parsed


def traffic_by_ref(lines: Iterable[bytes], api_domain: str) -> tuple[dict[str, Traffic], int]:
    """Lines -> ({ref: Traffic}, lines that matched no project)."""
    found: dict[str, Traffic] = {}
    unmatched = 0
    refs: dict[str, str | None] = {}  # host -> ref, once per host
    suffix = "." + api_domain.lower()
    for item in _items(list(lines)):
        try:
            host, project, status, seconds = item["h"], item["p"], int(item["s"]), float(item["rt"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            unmatched += 1
            continue
        ref = project or None
        if ref is None:
            if host not in refs:
                name = str(host).lower()
                short = name[: -len(suffix)] if name.endswith(suffix) else ""
                refs[host] = short if short and "." not in short else None
            ref = refs[host]
        if ref is None:
            unmatched += 1
            continue
        traffic = found.get(ref)
        if traffic is None:
            traffic = found[ref] = Traffic()
        traffic.requests += 1
        if status >= 500:
            traffic.server_errors += 1
            traffic.error_paths[str(item.get("u", ""))] += 1  # type: ignore[attr-defined]
        elif status >= 400:
            traffic.client_errors += 1
        traffic.latencies.append(seconds)
    return found, unmatched


class LogFollower:
    """The complete lines appended to `path` since the last call."""

    def __init__(self, path: Path, from_start: bool = False) -> None:
        self.path = path
        self.from_start = from_start
        self.handle: BinaryIO | None = None
        self.inode: int | None = None
        self.rest = b""

    def _open(self, at_end: bool) -> bool:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - held open between calls on purpose
        except OSError:
            return False
        if at_end:
            handle.seek(0, os.SEEK_END)
        self.handle, self.inode, self.rest = handle, os.fstat(handle.fileno()).st_ino, b""
        return True

    def _read(self, budget: int) -> bytes:
        handle = self.handle
        assert handle is not None
        return handle.read(budget)

    def _close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle = None

    def read_lines(self) -> list[bytes]:
        if self.handle is None and not self._open(at_end=not self.from_start):
            return []
        self.from_start = True  # after the first open, every new file is read from its start
        data = self._read(READ_LIMIT)
        try:
            current = os.stat(self.path)
        except OSError:
            current = None
        assert self.handle is not None
        position = self.handle.tell()
        if current is not None and current.st_ino != self.inode and len(data) < READ_LIMIT:
            # rotated: the old file is read to its end (above); the new one from its start
            tail = self.rest + data
            self._close()
            self._open(at_end=False)
            data = tail + self._read(READ_LIMIT)
            self.rest = b""
        elif current is not None and current.st_size < position and not data:
            self.handle.seek(0)  # truncated in place
            data = self._read(READ_LIMIT)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        return [line for line in lines if line]

    def close(self) -> None:
        self._close()
