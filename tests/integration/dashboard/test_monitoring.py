"""The dashboard's monitoring parts over HTTP against the real service and PostgreSQL (issue 18): the span picker
reading the downsampled tiers, the uptime-by-day table, and the host (operator) page, shown only to an owner of every
org. Rows are written through the collector's and the uptime check's own store functions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Playwright, expect

from nextmavens.control.db import connect_control
from nextmavens.control.store import metrics, monitoring
from nextmavens.control.store.projects import save_org
from tests.integration.dashboard.browser import browser, screenshot, sign_in
from tests.integration.dashboard.harness import PASSWORD, DashboardStage, csrf_of, dashboard_stage, signed_in_client
from tests.integration.metrics.test_domains_dns import HOST_IP, add, dns  # noqa: F401 - `dns` is a fixture
from tests.integration.platform.harness import ACME_MEMBERS
from tests.support.edgesamples import settings_fields
from tests.support.projects import write_project

OPERATOR = "boss@globex.test"  # owner of globex, and made owner of acme below: an owner of every org
OUTSIDER = "dev@globex.test"  # a developer of globex only


@pytest.fixture(scope="module")
def dash(pg_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardStage]:
    edge = tmp_path_factory.mktemp("edge") / "edge.yaml"  # what the domains check reads: names, address, certs
    settings = settings_fields(letsencrypt_dir=str(edge.parent / "letsencrypt"))
    edge.write_text(yaml.safe_dump({"settings": settings}))
    with dashboard_stage(pg_template, "nextmavens-dashmon-", deploy_edge_config=edge) as stage:
        write_project(stage.stage.projects, "acme", "shop", domains=["www.shop.test", "shop.test"])
        for member in ("dev@acme.test", "owner@acme.test", OPERATOR, OUTSIDER):
            stage.set_password(member)
        now = int(time.time()) // 60 * 60
        today = datetime.now(UTC).date()
        with connect_control(stage.stage.server.dsn) as conn:
            members = [{"email": e, "role": r} for e, r in ACME_MEMBERS.items()]
            save_org(conn, "acme", "Acme", [*members, {"email": OPERATOR, "role": "owner"}])
            globex = [{"email": OPERATOR, "role": "owner"}, {"email": OUTSIDER, "role": "developer"}]
            save_org(conn, "globex", "Globex", globex)
            ids = metrics.SeriesIds()
            # three days ago, an hour of a container since gone: after maintain only the 5-minute tier holds it
            for back in range(60):
                old = now - 3 * 86400 - 60 * back
                metrics.write_minute(conn, ids, old, {"acme/shop": {"mem_mb:gone": 77.0}})
            for back in range(30, 0, -1):
                metrics.write_minute(
                    conn,
                    ids,
                    now - 60 * back,
                    {
                        "acme/shop": {"requests": 12.0, "mem_mb:rest": 42.5},
                        "host": {"mem_used_pct": 55.0, "cpu_pct": 7.5, "disk_used_pct:/": 31.0,
                                 "cpu_pct:nextmavens-postgres": 3.25, "mem_mb:nextmavens-postgres": 210.0},
                    },
                )  # fmt: skip
            metrics.maintain(conn, now)
            assert conn.execute("SELECT count(*) FROM metric_raw WHERE ts < %s", (now - 2 * 86400,)).fetchone() == (0,)
            api = monitoring.Target("acme/shop", "api", "shop.api.example.test")
            for _ in range(3):
                monitoring.record_checks(conn, today - timedelta(days=1), [(api, True)])
            monitoring.record_checks(conn, today, [(api, True)])
            monitoring.record_checks(conn, today, [(api, False)])
            monitoring.record_change(conn, api, False, "HTTP 502")
        yield stage


def chart_titles(page: str) -> list[str]:
    return re.findall(r"<title>([^<]*)</title>", page)


def test_the_span_picker_reads_the_tier_that_holds_the_span(dash: DashboardStage) -> None:
    client = signed_in_client(dash.url, "dev@acme.test")
    day = client.get("/orgs/acme/projects/shop")
    week = client.get("/orgs/acme/projects/shop", params={"span": "7d"})
    odd = client.get("/orgs/acme/projects/shop", params={"span": "5y"})
    assert day.status_code == week.status_code == odd.status_code == 200
    # the container gone three days ago: no point in the last 24 h, its hour from the 5-minute tier over 7 days
    assert "memory gone: 77 MB" not in chart_titles(day.text)
    assert "memory gone: 77 MB" in chart_titles(week.text), chart_titles(week.text)
    assert 'href="?span=7d#metrics-h" aria-current="page"' in week.text and "5-minute averages" in week.text
    assert 'href="?span=24h#metrics-h" aria-current="page"' in odd.text  # an unknown span is the default


def test_the_uptime_table_shows_each_day(dash: DashboardStage) -> None:
    page = signed_in_client(dash.url, "dev@acme.test").get("/orgs/acme/projects/shop").text
    today = datetime.now(UTC).date()
    table = page[page.index('id="uptime-h"') :]
    table = table[: table.index("</table>")]
    assert f"<th scope=\"col\">{(today - timedelta(days=1)).isoformat()[5:]}</th>" in table
    assert "<td>shop.api.example.test</td><td>api</td><td>100 %</td><td>50 %</td>" in table
    assert "shop.api.example.test down" in page and "HTTP 502" in page
    crm = signed_in_client(dash.url, "dev@acme.test").get("/orgs/acme/projects/crm").text
    assert 'id="uptime-empty"' in crm


def test_the_host_page_is_the_operators_only(dash: DashboardStage) -> None:
    before = dash.sql("SELECT count(*) FROM audit_log WHERE action = 'host.read'")[0][0]
    host = signed_in_client(dash.url, OPERATOR).get("/host", params={"span": "24h"})
    assert host.status_code == 200, host.text
    titles = chart_titles(host.text)
    for expected in ("memory used: 55 %", "CPU: 7.5 %", "disk /: 31 %", "CPU nextmavens-postgres: 3.25 %",
                     "memory nextmavens-postgres: 210 MB"):  # fmt: skip
        assert any(t.startswith(expected.split(":")[0] + ":") for t in titles), (expected, titles)
    for member in ("owner@acme.test", "dev@acme.test"):  # an owner of one org only, a developer
        refused = signed_in_client(dash.url, member).get("/host")
        assert refused.status_code == 404
        assert "nextmavens-postgres" not in refused.text and "nm-chart" not in refused.text
    assert dash.sql("SELECT count(*) FROM audit_log WHERE action = 'host.read'")[0][0] == before + 2


def test_custom_domains_and_the_recheck_button(
    dash: DashboardStage, dns: tuple[int, str], monkeypatch: pytest.MonkeyPatch  # noqa: F811 - the fixture
) -> None:
    """The page shows the last check; Recheck (a POST with the form token) runs `domains` against pebble's DNS test
    server again; a burst of rechecks is refused; a developer of another org cannot recheck."""
    port, management = dns
    monkeypatch.setenv("NEXTMAVENS_DNS_SERVER", f"127.0.0.1:{port}")
    add(management, "add-a", {"host": "shop.api.example.test.", "addresses": [HOST_IP]})
    add(management, "set-cname", {"host": "www.shop.test.", "target": "shop.api.example.test."})
    client = signed_in_client(dash.url, "dev@acme.test")
    before = client.get("/orgs/acme/projects/shop").text
    assert 'id="domains-unchecked"' in before
    form = csrf_of(before)
    refused = client.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": "wrong"})
    assert refused.status_code == 403
    done = client.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": form})
    assert done.status_code == 303 and done.headers["location"] == "/orgs/acme/projects/shop#domains-h"
    page = client.get("/orgs/acme/projects/shop").text
    table = page[page.index('id="domains-h"') : page.index("Recent alerts")]
    assert "<td>www.shop.test</td><td><code>CNAME www.shop.test → shop.api.example.test</code></td>" in table
    assert f"CNAME shop.api.example.test, {HOST_IP} (ready)" in table
    assert f"<code>A shop.test → {HOST_IP}</code>" in table and "shop.test does not resolve" not in table
    assert "create A shop.test" in table and "DNS is ready: the next apply" in table
    # the apex gets its record: a recheck shows it ready
    add(management, "add-a", {"host": "shop.test.", "addresses": [HOST_IP]})
    assert client.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": form}).status_code == 303
    table = client.get("/orgs/acme/projects/shop").text
    assert "create A shop.test" not in table[table.index('id="domains-h"') :]
    # rate limited per project: the third recheck within the burst's refill time is refused
    assert client.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": form}).status_code == 303
    limited = client.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": form})
    assert limited.status_code == 429 and "try again in" in limited.text
    # another org's developer: the project is not found, nothing checked
    outsider = signed_in_client(dash.url, OUTSIDER)
    token = csrf_of(outsider.get("/tokens").text)
    denied = outsider.post("/orgs/acme/projects/shop/domains/recheck", data={"csrf": token})
    assert denied.status_code == 404 and "www.shop.test" not in denied.text


def test_in_the_browser_spans_uptime_domains_and_the_host_page(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    with browser(playwright, tmp_path / "dev") as context:
        page = context.new_page()
        sign_in(page, dash.url, "dev@acme.test", PASSWORD)
        page.goto(f"{dash.url}/orgs/acme/projects/shop")
        spans = page.get_by_role("navigation", name="Span")
        expect(spans.get_by_role("link", name="24h")).to_have_attribute("aria-current", "page")
        spans.get_by_role("link", name="7d").click()
        expect(page).to_have_url(re.compile(r"\?span=7d#metrics-h$"))
        expect(page.get_by_role("img", name="memory gone: 77 MB")).to_be_visible()
        uptime = page.locator("table", has=page.get_by_role("columnheader", name="Kind"))
        expect(uptime.get_by_role("row").nth(1)).to_contain_text("shop.api.example.test")
        expect(uptime.get_by_role("row").nth(1)).to_contain_text("50 %")
        screenshot(page, tmp_path, "project-monitoring")
        page.goto(f"{dash.url}/orgs/acme/projects/crm")  # no custom domains: Recheck says so
        page.get_by_role("button", name="Recheck").click()
        expect(page).to_have_url(re.compile(r"/orgs/acme/projects/crm#domains-h$"))
        expect(page.get_by_text("This project has no custom domains")).to_be_visible()
        page.goto(f"{dash.url}/host")  # a developer is no operator
        assert "nm-chart" not in page.content() and "no page" in page.content()
    with browser(playwright, tmp_path / "operator") as context:
        page = context.new_page()
        sign_in(page, dash.url, OPERATOR, PASSWORD)
        page.goto(f"{dash.url}/host")
        expect(page.get_by_role("heading", name="Host", exact=True)).to_be_visible()
        expect(page.get_by_role("img", name="memory used: 55 %")).to_be_visible()
        expect(page.get_by_role("heading", name="nextmavens-postgres")).to_be_visible()
        page.get_by_role("navigation", name="Span").get_by_role("link", name="30d").click()
        expect(page).to_have_url(re.compile(r"/host\?span=30d$"))
        screenshot(page, tmp_path, "host-page")
    with browser(playwright, tmp_path / "outsider") as context:  # a developer of another org
        page = context.new_page()
        sign_in(page, dash.url, OUTSIDER, PASSWORD)
        for path in ("/host", "/orgs/acme/projects/shop", "/orgs/acme/projects/shop?span=1y"):
            answer = page.goto(f"{dash.url}{path}")
            assert answer is not None and answer.status == 404, path
            assert "shop.api.example.test" not in page.content() and "nm-chart" not in page.content()
