"""What `nextmavens metrics`, the platform API and the dashboard show of one scope: the current values and each
series over a span, averaged into a bounded number of buckets (pure: points in, a JSON-ready dict out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nextmavens.metrictiers import resample

HOST = "host"  # the scope of the host's own series (its memory, CPU, disks and the shared containers)
BUCKETS = 60  # points per series in a view: a sparkline's width, a chart's resolution

# Display order and units of the series a scope has (others follow, by name).
KNOWN = (
    ("requests", "req/min"),
    ("http_4xx", "req/min"),
    ("http_5xx", "req/min"),
    ("p50_ms", "ms"),
    ("p95_ms", "ms"),
    ("p99_ms", "ms"),
    ("db_size_mb", "MB"),
    ("db_connections", ""),
    ("db_tps", "tx/s"),
    ("cpu_pct", "% of a core"),
    ("mem_mb", "MB"),
    ("mem_used_pct", "%"),
    ("mem_used_mb", "MB"),
    ("disk_used_pct", "%"),
    ("disk_free_gb", "GB"),
)
UNITS = dict(KNOWN)
ORDER = {name: index for index, (name, _) in enumerate(KNOWN)}


def unit_of(series: str) -> str:
    return UNITS.get(series.partition(":")[0], "")


def sort_key(series: str) -> tuple[int, str]:
    base, _, item = series.partition(":")
    return ORDER.get(base, len(ORDER)), item


def metrics_view(
    scope: str,
    since: int,
    now: int,
    points: Mapping[str, Sequence[tuple[int, float, float]]],
    current: tuple[int, Mapping[str, float]] | None,
    buckets: int = BUCKETS,
) -> dict[str, Any]:
    """{"scope", "since", "until", "step", "current_at", "series": [{"name", "unit", "current", "min", "max",
    "points": [value or null, ...]}]}, series in display order."""
    step = max(1, (now - since) // max(buckets, 1))
    series = []
    for name in sorted(set(points) | set(current[1] if current else {}), key=sort_key):
        values = resample(points.get(name, ()), since, now, buckets)
        present = [p[2] for p in points.get(name, ())]
        series.append(
            {
                "name": name,
                "unit": unit_of(name),
                "current": (current[1].get(name) if current else None),
                "min": min((v for v in values if v is not None), default=None),
                "max": max(present, default=None),
                "points": [None if v is None else round(v, 3) for v in values],
            }
        )
    return {
        "scope": scope,
        "since": since,
        "until": now,
        "step": step,
        "current_at": current[0] if current else None,
        "series": series,
    }
