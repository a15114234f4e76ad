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
