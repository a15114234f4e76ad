"""Live state on the dashboard in a real browser (Debian's chromium through Playwright): with the project list and a
project page open, a suspend made through the API (`PATCH /v1/projects/...` with a token, the write path's commit
and apply) and a health record written by the monitor show on both pages without a reload (server-sent events);
over HTTP, a member gets no stream of another org or of a project out of their sight."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Playwright, expect, sync_playwright

from nextmavens.cli import main
from tests.integration.dashboard.browser import browser, sign_in
from tests.integration.dashboard.harness import PASSWORD, DashboardStage, csrf_of, signed_in_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


def admin_token(dash: DashboardStage) -> str:
    argv = ["token", "create", "--member", "admin@acme.test", "--org", "acme", "--json"]
    argv += ["--dsn", dash.stage.server.dsn, "--master-key", str(dash.stage.master_key)]
    made = CliRunner().invoke(main, argv)
    assert made.exit_code == 0, made.output
    return str(json.loads(made.stdout)["token"])


def test_a_state_change_made_through_the_api_shows_on_open_pages_without_reload(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    token = admin_token(dash)
    api = httpx.Client(base_url=dash.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    with browser(playwright, tmp_path / "profile") as context:
        listing = context.new_page()
        sign_in(listing, dash.url, "admin@acme.test", PASSWORD)
        expect(listing).to_have_url(re.compile(r"/orgs/acme$"))
        crm_row = listing.locator("table.list tbody tr", has_text="crm")
        expect(crm_row.locator(".badge").first).to_have_text("active")
        project = context.new_page()
        project.goto(f"{dash.url}/orgs/acme/projects/crm")
        expect(project.get_by_role("button", name="Suspend project")).to_be_visible()
        loads = {"list": 0, "project": 0}
        listing.on("load", lambda _: loads.__setitem__("list", loads["list"] + 1))
        project.on("load", lambda _: loads.__setitem__("project", loads["project"] + 1))
        try:
            changed = api.patch("/v1/projects/acme/crm", json={"state": "suspended"})
            assert changed.status_code == 200, changed.text
            expect(crm_row.locator(".badge").first).to_have_text("suspended", timeout=15_000)
            expect(crm_row.get_by_role("button", name="Resume crm")).to_be_visible()
            expect(project.locator("h1 .badge").first).to_have_text("suspended", timeout=15_000)
            expect(project.get_by_role("button", name="Resume project")).to_be_visible()

            # The health monitor records a failing container: both pages show it, still without a reload.
            health = dash.stage.projects.parent / "monitor-state" / "health.json"
            health.parent.mkdir(parents=True, exist_ok=True)
            recorded = {"container:nm-crm-rest-1": {"ok": False, "detail": "exited (1)"}}
            health.write_text(json.dumps({"health": recorded, "checked_at": time.time()}))
            expect(project.get_by_role("cell", name="exited (1)")).to_be_visible(timeout=15_000)
            expect(crm_row.locator(".badge.health-failing")).to_have_text("failing", timeout=15_000)
            assert loads == {"list": 0, "project": 0}  # no page was loaded again
        finally:
            api.patch("/v1/projects/acme/crm", json={"state": "active"})
            (dash.stage.projects.parent / "monitor-state" / "health.json").unlink(missing_ok=True)


def test_the_streams_are_the_members_own_orgs_and_projects_only(dash: DashboardStage) -> None:
    developer = signed_in_client(dash.url, "dev@acme.test")
    assert developer.get("/orgs/globex/events").status_code == 404
    assert developer.get("/orgs/globex/projects/web/events").status_code == 404
    assert httpx.get(f"{dash.url}/orgs/acme/events", timeout=30, follow_redirects=False).status_code == 303
    with developer.stream("GET", "/orgs/acme/events") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                rows = json.loads(line[len("data: ") :])["rows"]
                break
    assert "shop" in rows and "web" not in rows and "Suspend" not in rows  # a developer gets no buttons


# The streams below are read to their end with a 20 s read timeout, well under the stream's 300 s: the client raises
# ReadTimeout when the service keeps one open with nothing new to send, so the service must end it by itself.


def test_signing_out_ends_an_open_stream(dash: DashboardStage) -> None:
    developer = signed_in_client(dash.url, "dev@acme.test")
    other_tab = httpx.Client(base_url=dash.url, cookies=developer.cookies, timeout=30, follow_redirects=False)
    with developer.stream("GET", "/orgs/acme/events", timeout=20) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        out = other_tab.post("/signout", data={"csrf": csrf_of(other_tab.get("/tokens").text)})
        assert out.status_code == 303
        assert [line for line in lines if line.startswith("data: ")] == []  # ended, nothing more sent


def test_a_member_removed_from_the_org_stops_receiving_its_project(dash: DashboardStage) -> None:
    """dev@acme.test also joins globex, so the session itself stays live: the stream ends on the project's
    authorization read again, not only on the session check."""
    developer = signed_in_client(dash.url, "dev@acme.test")
    (original,) = dash.sql("SELECT members FROM orgs WHERE slug = 'acme'")[0]
    dash.sql(
        "UPDATE orgs SET members = members || '[{\"email\": \"dev@acme.test\", \"role\": \"developer\"}]'"
        " WHERE slug = 'globex'"
    )
    try:
        with developer.stream("GET", "/orgs/acme/projects/shop/events", timeout=20) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            dash.sql(
                "UPDATE orgs SET members = (SELECT jsonb_agg(m) FROM jsonb_array_elements(members) m"
                " WHERE m->>'email' <> 'dev@acme.test') WHERE slug = 'acme'"
            )
            assert [line for line in lines if line.startswith("data: ")] == []
        assert developer.get("/tokens").status_code == 200  # the session itself is still live
    finally:
        dash.sql("UPDATE orgs SET members = %s WHERE slug = 'acme'", json.dumps(original))
        dash.sql(
            "UPDATE orgs SET members = (SELECT jsonb_agg(m) FROM jsonb_array_elements(members) m"
            " WHERE m->>'email' <> 'dev@acme.test') WHERE slug = 'globex'"
        )
