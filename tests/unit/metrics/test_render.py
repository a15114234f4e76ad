"""Sparklines, the SVG chart the dashboard embeds, and the view they draw from."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nextmavens.metricsrender import BLOCKS, render_text, sparkline, svg_chart
from nextmavens.metricsview import metrics_view


def test_sparklines_scale_between_their_own_extremes() -> None:
    assert sparkline([0, 7, None, 3.5]) == BLOCKS[0] + BLOCKS[-1] + " " + BLOCKS[4]
    assert sparkline([None, None]) == "  "
    assert sparkline([5, 5]) == BLOCKS[4] * 2 and sparkline([0, 0]) == BLOCKS[0] * 2


def test_the_chart_is_well_formed_svg_with_escaped_text() -> None:
    svg = svg_chart([1.0, 2.0, None, 4.0, 3.0], 'cpu <script>"x"</script>', "%")
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert [len(line.get("points", "").split()) for line in lines] == [2, 2]  # the gap breaks the line
    assert 'cpu &lt;script&gt;&quot;x&quot;&lt;/script&gt;: 3 %' in svg and "max 4" in svg
    assert ET.fromstring(svg_chart([], "empty"))  # noqa: S314 - no data is still a chart


def test_view_orders_series_and_buckets_points() -> None:
    points = {"cpu_pct:rest": [(0, 1.0, 1.0)], "requests": [(0, 2.0, 3.0), (1800, 4.0, 4.0)], "zz": []}
    view = metrics_view("acme/shop", 0, 3600, points, (3540, {"requests": 4.0}), buckets=2)
    assert [s["name"] for s in view["series"]] == ["requests", "cpu_pct:rest", "zz"]
    requests = view["series"][0]
    assert requests == {"name": "requests", "unit": "req/min", "current": 4.0, "min": 2.0, "max": 4.0,
                        "points": [2.0, 4.0]}
    text = render_text(view)
    assert text.splitlines()[0] == "acme/shop  (last 1 h)" and "4 req/min" in text
    assert "no metrics recorded" in render_text(metrics_view("host", 0, 60, {}, None))


def test_a_lone_value_between_gaps_is_drawn_as_a_dot() -> None:
    """A long span's only filled bucket (a collector that ran for minutes of a month) is still visible."""
    svg = svg_chart([None, None, 5.0, None, 3.0, 4.0], "x")
    assert svg.count("<circle") == 1 and svg.count("<polyline") == 1
