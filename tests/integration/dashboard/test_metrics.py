"""The project page's Metrics section over HTTP against the real service and PostgreSQL: metrics rows written
through the collector's own store functions (control/store/metrics.py), alerts through control/store/monitoring.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import metrics, monitoring
from tests.integration.dashboard.harness import DashboardStage, dashboard_stage, signed_in_client

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def dash(pg_template: Any) -> Iterator[DashboardStage]:
    with dashboard_stage(pg_template, "nextmavens-dashmetrics-") as stage:
        for member in ("dev@acme.test", "boss@globex.test"):
            stage.set_password(member)
        minute = int(time.time()) // 60 * 60
        with connect_control(stage.stage.server.dsn) as conn:
            ids = metrics.SeriesIds()
            for back in range(30, 0, -1):
                metrics.write_minute(
                    conn,
                    ids,
                    minute - 60 * back,
                    {
                        "acme/shop": {
                            "requests": 12.0,
                            "http_5xx": 2.0,
                            "p95_ms": 80.0,
                            "db_size_mb": 12.0,
                            "db_connections": 4.0,
                            "mem_mb:rest": 42.5,
                            "mem_mb:auth": 17.25,
                        },
                        "globex/web": {"requests": 1.0, "mem_mb:globexonly": 9.0},
                    },
                )
            monitoring.add_alert(conn, "errors", "acme/shop", f"acme/shop: 5xx rose on /x{HOSTILE}", {}, True)
            monitoring.add_alert(conn, "uptime", "globex/web", "globex/web: globex-secret-alert down", {}, True)
        yield stage


def test_a_member_sees_the_projects_charts_memory_and_alerts(dash: DashboardStage) -> None:
    answer = signed_in_client(dash.url, "dev@acme.test").get("/orgs/acme/projects/shop")
    assert answer.status_code == 200
    page = answer.text
    titles = re.findall(r"<title>([^<]*)</title>", page)
    for expected in ("requests: 12 req/min", "5xx: 2 req/min", "latency p95: 80 ms", "database size: 12 MB",
                     "db connections: 4", "memory rest: 42.5 MB", "memory auth: 17.25 MB"):
        assert expected in titles, (expected, titles)
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="nm-chart"') == 7
    assert "<td>rest</td><td>42.5 MB</td>" in page and "<td>auth</td><td>17.25 MB</td>" in page
    assert "5xx rose on /x" in page and "globex-secret-alert" not in page and "globexonly" not in page
    assert 'id="metrics-empty"' not in page
    # The page's policy still holds: no inline script, only the service's own.
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_tenant_text_in_an_alert_is_escaped(dash: DashboardStage) -> None:
    page = signed_in_client(dash.url, "dev@acme.test").get("/orgs/acme/projects/shop").text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_a_project_without_metrics_shows_the_empty_state(dash: DashboardStage) -> None:
    answer = signed_in_client(dash.url, "dev@acme.test").get("/orgs/acme/projects/crm")
    assert answer.status_code == 200
    assert 'id="metrics-empty"' in answer.text and "nm-chart" not in answer.text
    assert "5xx rose" not in answer.text  # shop's alert is not crm's


def test_another_orgs_project_is_not_found_with_its_metrics(dash: DashboardStage) -> None:
    client = signed_in_client(dash.url, "dev@acme.test")
    answer = client.get("/orgs/globex/projects/web")
    assert answer.status_code == 404
    assert "globexonly" not in answer.text and "globex-secret-alert" not in answer.text
    own = signed_in_client(dash.url, "boss@globex.test").get("/orgs/globex/projects/web")
    assert own.status_code == 200 and "memory globexonly: 9 MB" in own.text and "globex-secret-alert" in own.text
