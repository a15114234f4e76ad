"""The dashboard in a real browser (Debian's chromium through Playwright) against the real service, PostgreSQL and
the Evolution STAND-IN: sign-in, wrong password and lockout, the org switcher, the service_role key, creating a
project, pairing WhatsApp by QR code, CSRF refusal and session expiry. Screenshots: see browser.py."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Playwright, expect

from nextmavens.control.db import connect_control
from nextmavens.platform.invites import create_invite
from tests.integration.dashboard.browser import PHONE, browser, screenshot, sign_in
from tests.integration.dashboard.harness import PASSWORD, DashboardStage, git


def test_sign_in_shows_only_the_members_orgs_and_their_projects(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        sign_in(page, dash.url, "admin@acme.test", PASSWORD)
        expect(page).to_have_url(re.compile(r"/orgs/acme$"))
        expect(page.get_by_role("heading", name="Projects in acme")).to_be_visible()
        switcher = page.get_by_label("Organization")
        assert switcher.locator("option").all_inner_texts() == ["acme"]
        rows = page.locator("table.list tbody tr")
        expect(rows).to_have_count(2)
        assert "globex" not in page.content() and "web" not in rows.all_inner_texts()
        screenshot(page, tmp_path, "project-list")
        page.goto(f"{dash.url}/orgs/globex")
        assert "no org globex" in page.content()
    with browser(playwright, tmp_path / "owner") as context:  # a member of two orgs switches between them
        dash.sql(
            "UPDATE orgs SET members = members || '[{\"email\": \"admin@acme.test\", \"role\": \"developer\"}]'"
            " WHERE slug = 'globex'"
        )
        try:
            page = context.new_page()
            sign_in(page, dash.url, "admin@acme.test", PASSWORD)
            page.get_by_label("Organization").select_option("globex")
            expect(page).to_have_url(re.compile(r"/orgs/globex$"))
            expect(page.locator("table.list tbody tr")).to_have_count(1)
        finally:
            dash.sql(
                "UPDATE orgs SET members = (SELECT jsonb_agg(m) FROM jsonb_array_elements(members) m"
                " WHERE m->>'email' <> 'admin@acme.test') WHERE slug = 'globex'"
            )


def test_a_wrong_password_is_refused_and_repeated_ones_lock_the_account(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    dash.set_password("leaver@acme.test")
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        for _ in range(3):
            sign_in(page, dash.url, "leaver@acme.test", "wrong wrong wrong")
            expect(page.get_by_role("alert")).to_have_text("wrong email, password or code")
        sign_in(page, dash.url, "leaver@acme.test", PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text("locked")
        expect(page).to_have_url(re.compile(r"/signin$"))


def test_a_developer_never_sees_the_service_role_key_an_admin_does_after_the_password(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    with dash.stage.engine().secrets() as store:
        service_key = store.project_secrets("shop").keys.service_role
        anon_key = store.project_secrets("shop").keys.anon
    with browser(playwright, tmp_path / "dev") as context:
        page = context.new_page()
        sign_in(page, dash.url, "dev@acme.test", PASSWORD)
        page.goto(f"{dash.url}/orgs/acme/projects/shop")
        expect(page.locator("#anon-key")).to_have_text(anon_key)
        assert service_key not in page.content() and page.get_by_text("service_role key").count() == 0
    with browser(playwright, tmp_path / "admin") as context:
        page = context.new_page()
        sign_in(page, dash.url, "admin@acme.test", PASSWORD)
        page.goto(f"{dash.url}/orgs/acme/projects/shop")
        screenshot(page, tmp_path, "project-page")
        assert service_key not in page.content()
        page.get_by_label("Your password, to show the service_role key").fill(PASSWORD)
        page.get_by_role("button", name="Show key").click()
        expect(page.locator("#service-key")).to_have_text(service_key)


def test_an_admin_creates_a_project_end_to_end(dash: DashboardStage, playwright: Playwright, tmp_path: Path) -> None:
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        sign_in(page, dash.url, "admin@acme.test", PASSWORD)
        page.get_by_label("Ref").fill("blog")
        page.get_by_label("Name").fill("Acme Blog")
        page.get_by_label("Site URL").fill("https://blog.acme.test")
        page.get_by_role("button", name="Create and apply").click()
        expect(page).to_have_url(re.compile(r"/orgs/acme/projects/blog$"), timeout=120_000)
        expect(page.locator("h1")).to_contain_text("Acme Blog")
        expect(page.locator("h1 .badge").first).to_have_text("active")
        expect(page.locator("#anon-key")).to_have_text(re.compile(r"^eyJ"))
        page.goto(f"{dash.url}/orgs/acme")
        page.get_by_label("Ref").fill("blog")  # the same ref again: refused by the write path, nothing committed
        page.get_by_label("Name").fill("Second Blog")
        page.get_by_label("Site URL").fill("https://blog2.acme.test")
        page.get_by_role("button", name="Create and apply").click()
        expect(page.get_by_role("alert")).to_contain_text("already exists")
    log = git(dash.stage.projects, "log", "-1", "--format=%an%n%B")
    assert log.startswith("admin@acme.test\nCreate project acme/blog") and "dashboard session ses_" in log
    assert dash.sql("SELECT state FROM projects WHERE ref = 'blog'") == [("active",)]


def test_pairing_shows_the_qr_code_until_connected_then_the_number(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    dash.evolution.add_instance("shop--support")
    dash.evolution.api.open_after = 4  # no code, QR codes, then the phone has scanned (the stand-in's pairing)
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        sign_in(page, dash.url, "admin@acme.test", PASSWORD)
        page.goto(f"{dash.url}/orgs/acme/projects/shop/whatsapp/support")
        page.get_by_role("button", name="Pair a phone").click()
        qr = page.get_by_role("img", name="QR code to pair WhatsApp")
        expect(qr).to_be_visible(timeout=20_000)
        assert (qr.get_attribute("src") or "").startswith("data:image/png;base64,")
        screenshot(page, tmp_path, "whatsapp-pairing")
        expect(page.locator("#wa-number-value")).to_have_text("15550001234", timeout=30_000)
        expect(qr).to_be_hidden()
        expect(page.locator("#wa-state")).to_have_text("open")
        page.get_by_label("Number").fill("5511912345678")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("status")).to_contain_text("Sent (message")
    sent = dash.sql("SELECT detail FROM audit_log WHERE action = 'whatsapp.send' AND result = 'ok'")
    assert sent and sent[-1][0]["instance"] == "support" and "5511912345678" not in str(sent)


def test_a_form_with_a_wrong_token_is_refused(dash: DashboardStage, playwright: Playwright, tmp_path: Path) -> None:
    before = dash.sql("SELECT count(*) FROM access_tokens")[0][0]
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        sign_in(page, dash.url, "dev@acme.test", PASSWORD)
        page.goto(f"{dash.url}/tokens")
        page.locator("form[action='/tokens'] input[name=csrf]").evaluate("field => field.value = 'f'.repeat(64)")
        page.get_by_label("Name").fill("stolen")
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("body")).to_contain_text("security token is missing or expired")
        page.goto(f"{dash.url}/tokens")
        page.get_by_label("Name").fill("laptop")
        page.get_by_label("Read only").check()
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("#new-token")).to_have_text(re.compile(r"^nmp_"))
    assert dash.sql("SELECT count(*) FROM access_tokens")[0][0] == before + 1
    assert dash.sql("SELECT name, read_only FROM access_tokens ORDER BY created_at DESC LIMIT 1") == [("laptop", True)]


def test_an_expired_session_goes_back_to_sign_in(dash: DashboardStage, playwright: Playwright, tmp_path: Path) -> None:
    with browser(playwright, tmp_path / "profile", PHONE) as context:
        page = context.new_page()
        sign_in(page, dash.url, "owner@acme.test", PASSWORD)
        expect(page.get_by_role("heading", name="Projects in acme")).to_be_visible()
        dash.sql(
            "UPDATE dashboard_sessions SET last_seen_at = now() - interval '2 hours' WHERE member = 'owner@acme.test'"
        )
        page.goto(f"{dash.url}/orgs/acme/projects/crm")
        expect(page).to_have_url(re.compile(r"/signin\?next=/orgs/acme/projects/crm$"))
        sign_in(page, dash.url, "owner@acme.test", PASSWORD)
        page.goto(f"{dash.url}/orgs/acme/projects/crm")
        expect(page.get_by_role("heading", name="Recent audit events")).to_be_visible()


def test_an_invite_link_from_the_cli_sets_a_first_password(
    dash: DashboardStage, playwright: Playwright, tmp_path: Path
) -> None:
    with connect_control(dash.stage.server.dsn) as conn:
        invite = create_invite(conn, "ci@acme.test", timedelta(hours=2), "tests")
    with browser(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        page.goto(invite.link(dash.url))
        page.get_by_label("New password").fill("a brand new passphrase")
        page.get_by_label("The same again").fill("a brand new passphrase")
        page.get_by_role("button", name="Set password").click()
        expect(page).to_have_url(re.compile(r"/signin$"))
        sign_in(page, dash.url, "ci@acme.test", "a brand new passphrase")
        expect(page.get_by_role("heading", name="Projects in acme")).to_be_visible()
