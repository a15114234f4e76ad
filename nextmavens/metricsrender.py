"""Drawing metrics (pure): terminal sparklines for `nextmavens metrics`, and an SVG chart the dashboard embeds.

The chart is a few lines of SVG of our own rather than a charting library: one polyline and its labels need no
dependency and no script, render the same in every browser, and every text in them (a series name, a scope) is
escaped here, so the dashboard can put the string in its page as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled between the values' own minimum and maximum; a gap is a space."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    span = high - low
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif span == 0:
            out.append(BLOCKS[0] if high == 0 else BLOCKS[len(BLOCKS) // 2])
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, int((value - low) / span * len(BLOCKS)))])
    return "".join(out)


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def svg_chart(
    values: Sequence[float | None],
    title: str,
    unit: str = "",
    width: int = 320,
    height: int = 96,
) -> str:
    """A line chart of `values` (evenly spaced; None breaks the line) as a standalone `<svg>` element with its
    title, the latest value and the maximum. Text is escaped; the result is safe to embed in HTML as it is."""
    pad_top, pad_bottom = 18, 4
    plot_h = height - pad_top - pad_bottom
    present = [v for v in values if v is not None]
    high = max(present, default=0.0)
    low = min(0.0, min(present, default=0.0))
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    segments: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = index * step
        y = pad_top + plot_h - (value - low) / span * plot_h
        segments[-1].append((x, y))
    lines = "".join(
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        + '"/>'
        if len(points) > 1
        else f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2" fill="currentColor"/>'  # a lone value
        for points in segments
        if points
    )
    latest = next((v for v in reversed(values) if v is not None), None)
    label = f"{title}: {number(latest)} {unit}".strip()
    peak = f"max {number(high if present else None)}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nm-chart" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<text x="0" y="12" font-size="11" fill="currentColor">{escape(label)}</text>'
        f'<text x="{width}" y="12" font-size="10" fill="currentColor" text-anchor="end">{escape(peak)}</text>'
        f'<line x1="0" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}" stroke="currentColor"'
        f' stroke-opacity="0.2"/>'
        f"{lines}</svg>"
    )


def render_text(view: dict, width: int = 60) -> str:  # type: ignore[type-arg]
    """`nextmavens metrics`' table: name, current value and unit, sparkline, maximum."""
    rows = [f"{view['scope']}  (last {(view['until'] - view['since']) // 3600 or 1} h)"]
    if not view["series"]:
        return rows[0] + "\n  no metrics recorded yet (is nextmavens-metrics.service running?)"
    name_width = max(len(s["name"]) for s in view["series"])
    for series in view["series"]:
        current = f"{number(series['current'])} {series['unit']}".strip()
        rows.append(
            f"  {series['name']:<{name_width}}  {current:>16}  {sparkline(series['points'][-width:])}"
            f"  max {number(series['max'])}"
        )
    return "\n".join(rows)
