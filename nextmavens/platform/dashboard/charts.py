"""The project page's Metrics section (pure: the metrics view in, inline SVG charts and the containers' memory
out). The charts are `nextmavens.metricsrender.svg_chart`'s, which escapes every text it draws."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from nextmavens.metricsrender import number, svg_chart

# The series the page charts, in this order, with their titles; then one memory chart per container.
CHARTED = (
    ("requests", "requests"),
    ("http_5xx", "5xx"),
    ("p95_ms", "latency p95"),
    ("db_size_mb", "database size"),
    ("db_connections", "db connections"),
)
MEMORY = "mem_mb:"


def metrics_section(view: dict[str, Any]) -> dict[str, Any]:
    """{"charts": [svg Markup], "memory": [{"container", "mb"}], "recorded": whether the collector wrote any}."""
    by_name = {series["name"]: series for series in view["series"]}
    charts = [
        Markup(svg_chart(by_name[name]["points"], title, by_name[name]["unit"]))  # svg_chart escapes its text
        for name, title in CHARTED
        if name in by_name
    ]
    memory = []
    for series in view["series"]:
        if series["name"].startswith(MEMORY):
            container = series["name"][len(MEMORY) :]
            charts.append(Markup(svg_chart(series["points"], f"memory {container}", series["unit"])))
            memory.append({"container": container, "mb": number(series["current"])})
    return {"charts": charts, "memory": memory, "recorded": bool(view["series"])}


# The spans the project and host pages offer; each reads the tier that holds it (metrictiers: raw minutes for 24 h,
# 5-minute averages for 7 and 30 days, hourly ones for a year).
SPANS = ("24h", "7d", "30d", "1y")
HOST_CHARTED = (("mem_used_pct", "memory used"), ("cpu_pct", "CPU"))


def span_of(asked: str | None) -> str:
    return asked if asked in SPANS else SPANS[0]


def host_section(view: dict[str, Any]) -> dict[str, Any]:
    """The host page: memory, CPU and each disk, then every shared container's CPU and memory."""
    by_name = {series["name"]: series for series in view["series"]}
    host = [(name, title) for name, title in HOST_CHARTED if name in by_name]
    host += [(name, f"disk {name.partition(':')[2]}") for name in by_name if name.startswith("disk_used_pct:")]
    containers = sorted({name.partition(":")[2] for name in by_name if name.startswith(("cpu_pct:", MEMORY))})
    charts = [Markup(svg_chart(by_name[n]["points"], t, by_name[n]["unit"])) for n, t in host]
    per_container = []
    for container in containers:
        drawn = [
            Markup(svg_chart(by_name[name]["points"], f"{label} {container}", by_name[name]["unit"]))
            for name, label in ((f"cpu_pct:{container}", "CPU"), (f"{MEMORY}{container}", "memory"))
            if name in by_name
        ]
        per_container.append({"container": container, "charts": drawn})
    return {"charts": charts, "containers": per_container, "recorded": bool(view["series"])}


def uptime_table(view: dict[str, Any], days: int = 14) -> dict[str, Any]:
    """The uptime-by-day table: one row per checked name, one column per UTC day (newest last) of those that hold a
    check, each cell the day's uptime percentage (None: not checked that day)."""
    columns = sorted({d["day"] for target in view["targets"] for d in target["days"]})[-days:]
    rows = []
    for target in view["targets"]:
        by_day = {d["day"]: d for d in target["days"]}
        cells = [by_day[day]["uptime_pct"] if day in by_day else None for day in columns]
        rows.append({"kind": target["kind"], "name": target["name"], "cells": cells})
    return {"days": columns, "rows": rows, "events": view["events"][:10]}
