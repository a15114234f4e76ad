"""The project page's apps in a real browser (Debian's chromium through Playwright) against the real service and
PostgreSQL, with a STAND-IN for the host's privileged command (it answers `releases ORG/REF APP --json` as the
host's command line would, and streams an app's log for `container-logs`): the declared app is listed with its
active release, and its log follows in the page's live tail. Screenshots: see browser.py."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Playwright, expect, sync_playwright

from tests.integration.dashboard.browser import browser, screenshot, sign_in
from tests.integration.dashboard.harness import PASSWORD, DashboardStage, dashboard_stage, signed_in_client
from tests.support.projects import write_project

RELEASES = {
    "project": "acme/shop",
    "app": "web",
    "releases": [
        {"release": 4, "commit": "0123456789abcdef", "created": "2026-12-02T18:00:00", "running": True,
         "state": "active"},
        {"release": 3, "commit": "fedcba9876543210", "created": "2026-12-01T10:00:00", "running": False,
         "state": "previous"},
    ],
}
HOST_COMMAND = """#!{python}
import json, sys, time
argv = sys.argv[1:]
open({log!r}, "a").write(json.dumps(argv) + "\\n")
words = argv[3:]  # after the prefix's -n WRAPPER nextmavens
if words[:1] == ["releases"] and words[1:] == ["acme/shop", "web", "--json"]:
    print({releases!r})
elif words[:1] == ["container-logs"] and "app:web" in words:
    for i in range(3):
        print(f"web says {{i}}", flush=True)
    time.sleep(30 if "--follow" in words else 0)
else:
    sys.exit(2)
"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def apps_dash(pg_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardStage, Path]]:
    folder = tmp_path_factory.mktemp("host")
    command = folder / "host-command"
    log = folder / "argv.log"
    command.write_text(HOST_COMMAND.format(python=sys.executable, log=str(log), releases=json.dumps(RELEASES)))
    command.chmod(0o755)
    prefix = (str(command), "-n", "WRAPPER", "nextmavens")
    with dashboard_stage(pg_template, "nextmavens-dashapps-", privileged_argv=prefix) as stage:
        stage.set_password("dev@acme.test")
        write_project(stage.stage.projects, "acme", "shop", apps=[{"name": "web", "domains": ["web.acme.test"]}])
        yield stage, log


def test_the_project_page_lists_its_apps_with_the_active_release_and_follows_an_apps_log(
    apps_dash: tuple[DashboardStage, Path], playwright: Playwright, tmp_path: Path
) -> None:
    dash, log = apps_dash
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        sign_in(page, dash.url, "dev@acme.test", PASSWORD)
        expect(page).to_have_url(re.compile(r"/orgs/acme$"))
        page.goto(f"{dash.url}/orgs/acme/projects/shop")
        apps = page.locator("section[aria-labelledby=apps-h]")
        expect(apps.get_by_role("heading", name="Apps")).to_be_visible()
        row = apps.locator("tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(0)).to_have_text("web")
        expect(row.locator("td").nth(1)).to_have_text("web.acme.test")
        expect(row.locator("td").nth(2)).to_have_text("r4 (0123456789ab, 2026-12-02T18:00:00)")
        page.get_by_label("Service").select_option("app:web")
        page.get_by_role("button", name="Follow").click()
        expect(page.locator("#log-lines")).to_contain_text("web says 2")
        screenshot(page, tmp_path, "project-apps")
    calls = [json.loads(line)[3:] for line in log.read_text().splitlines()]
    assert ["releases", "acme/shop", "web", "--json"] in calls
    assert any(c[:1] == ["container-logs"] and "app:web" in c for c in calls)


def test_an_undeclared_app_or_an_odd_service_is_refused_before_the_host_is_asked(
    apps_dash: tuple[DashboardStage, Path]
) -> None:
    dash, log = apps_dash
    before = log.read_text() if log.exists() else ""
    client = signed_in_client(dash.url, "dev@acme.test")
    try:
        assert client.get("/orgs/acme/projects/shop/apps/api/release").status_code == 404
        assert client.get("/orgs/acme/projects/shop/apps/Web/release").status_code == 422
        assert client.get("/orgs/globex/projects/web/apps/web/release").status_code == 404
        odd = client.get("/orgs/acme/projects/shop/logs", params={"service": "app:web;x"})
        assert odd.status_code == 422
    finally:
        client.close()
    assert (log.read_text() if log.exists() else "") == before
    anonymous = httpx.get(f"{dash.url}/orgs/acme/projects/shop/apps/web/release", follow_redirects=False)
    assert anonymous.status_code in (303, 401)
