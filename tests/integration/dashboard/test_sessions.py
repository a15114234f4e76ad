"""Sign-in, lockout, CSRF, session expiry, sign-out everywhere, invites and TOTP over HTTP against the real service
and PostgreSQL (the browser tests drive the same pages in chromium)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from click.testing import CliRunner

from nextmavens.cli import main
from nextmavens.control.db import connect_control
from nextmavens.platform import totp
from nextmavens.platform.invites import create_invite
from tests.integration.dashboard.harness import PASSWORD, DashboardStage, csrf_of, signed_in_client


def test_sign_in_sets_an_httponly_samesite_cookie_and_stores_only_its_hash(dash: DashboardStage) -> None:
    client = httpx.Client(base_url=dash.url, timeout=30)
    form = client.get("/signin")
    answer = client.post(
        "/signin", data={"email": "Dev@Acme.test", "password": PASSWORD, "csrf": csrf_of(form.text), "next": "/"}
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("nm_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    stored = dash.sql("SELECT secret_hash, member FROM dashboard_sessions ORDER BY created_at DESC LIMIT 1")
    assert stored[0][1] == "dev@acme.test" and secret not in stored[0][0] and len(stored[0][0]) == 64
    home = client.get("/", follow_redirects=True)
    assert home.status_code == 200 and "Projects in acme" in home.text


def test_a_wrong_password_is_refused_then_the_account_locks(dash: DashboardStage) -> None:
    dash.set_password("ci@acme.test")
    client = httpx.Client(base_url=dash.url, timeout=30)
    token = csrf_of(client.get("/signin").text)

    def attempt(password: str) -> httpx.Response:
        return client.post("/signin", data={"email": "ci@acme.test", "password": password, "csrf": token})

    for _ in range(3):
        refused = attempt("not the password")
        assert refused.status_code == 401 and "wrong email, password or code" in refused.text
    locked = attempt(PASSWORD)  # the right password, but the account is locked now
    assert locked.status_code == 429 and "locked" in locked.text and int(locked.headers["retry-after"]) > 500
    rows = dash.sql("SELECT result FROM audit_log WHERE actor = 'ci@acme.test' AND action = 'dashboard.signin'")
    assert [r[0] for r in rows].count("failed") == 3 and ("locked",) in rows
    assert "not the password" not in str(dash.sql("SELECT detail FROM audit_log"))


def test_forms_without_the_session_token_are_refused_and_change_nothing(dash: DashboardStage) -> None:
    client = signed_in_client(dash.url, "dev@acme.test")
    other = signed_in_client(dash.url, "owner@acme.test")
    before = dash.sql("SELECT count(*) FROM access_tokens")[0][0]
    missing = client.post("/tokens", data={"name": "x"})
    foreign = client.post("/tokens", data={"name": "x", "csrf": csrf_of(other.get("/tokens").text)})
    cross_site = client.post(
        "/tokens",
        data={"name": "x", "csrf": csrf_of(client.get("/tokens").text)},
        headers={"Origin": "https://evil.example"},
    )
    assert (missing.status_code, foreign.status_code, cross_site.status_code) == (403, 403, 403)
    assert dash.sql("SELECT count(*) FROM access_tokens")[0][0] == before
    made = client.post("/tokens", data={"name": "cli", "csrf": csrf_of(client.get("/tokens").text)})
    assert made.status_code == 201 and "nmp_" in made.text
    assert dash.sql("SELECT count(*) FROM access_tokens")[0][0] == before + 1


def test_idle_and_absolute_expiry_end_a_session(dash: DashboardStage) -> None:
    idle = signed_in_client(dash.url, "admin@acme.test")
    assert idle.get("/orgs/acme").status_code == 200
    session = dash.sql("SELECT id FROM dashboard_sessions ORDER BY created_at DESC LIMIT 1")[0][0]
    dash.sql("UPDATE dashboard_sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = %s", session)
    gone = idle.get("/orgs/acme")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin?next=/orgs/acme")
    old = signed_in_client(dash.url, "admin@acme.test")
    session = dash.sql("SELECT id FROM dashboard_sessions ORDER BY created_at DESC LIMIT 1")[0][0]
    dash.sql("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second' WHERE id = %s", session)
    assert old.get("/orgs/acme").status_code == 303


def test_sign_out_everywhere_ends_every_session_of_the_member(dash: DashboardStage) -> None:
    laptop = signed_in_client(dash.url, "boss@globex.test")
    phone = signed_in_client(dash.url, "boss@globex.test")
    assert phone.get("/orgs/globex").status_code == 200
    out = laptop.post("/signout", data={"csrf": csrf_of(laptop.get("/tokens").text), "everywhere": "1"})
    assert out.status_code == 303
    assert laptop.get("/orgs/globex").status_code == 303 and phone.get("/orgs/globex").status_code == 303


def test_another_orgs_projects_are_not_found(dash: DashboardStage) -> None:
    client = signed_in_client(dash.url, "dev@acme.test")
    org = client.get("/orgs/globex")
    project = client.get("/orgs/globex/projects/web")
    assert org.status_code == 404 and project.status_code == 404
    assert "no project globex/web" in project.text
    listing = client.get("/orgs/acme").text
    assert 'value="globex"' not in listing and "shop" in listing


def test_the_service_role_key_needs_admin_and_the_password_again(dash: DashboardStage) -> None:
    developer = signed_in_client(dash.url, "dev@acme.test")
    page = developer.get("/orgs/acme/projects/shop")
    assert page.status_code == 200 and "anon key" in page.text and "service_role key" not in page.text
    reveal = "/orgs/acme/projects/shop/service-key"
    forced = developer.post(reveal, data={"csrf": csrf_of(page.text), "password": PASSWORD})
    assert forced.status_code == 403
    admin = signed_in_client(dash.url, "admin@acme.test")
    page = admin.get("/orgs/acme/projects/shop")
    with dash.stage.engine().secrets() as store:
        service_key = store.project_secrets("shop").keys.service_role
    assert "Show key" in page.text and service_key not in page.text
    wrong = admin.post("/orgs/acme/projects/shop/service-key", data={"csrf": csrf_of(page.text), "password": "nope"})
    assert wrong.status_code == 401 and service_key not in wrong.text
    right = admin.post("/orgs/acme/projects/shop/service-key", data={"csrf": csrf_of(page.text), "password": PASSWORD})
    assert right.status_code == 200 and service_key in right.text
    assert ("ok",) in dash.sql("SELECT result FROM audit_log WHERE action = 'keys.reveal_service_role'")
    assert "PASSWORD@" in right.text  # connection strings hold no password


def test_an_invite_link_sets_the_password_once(dash: DashboardStage) -> None:
    with connect_control(dash.stage.server.dsn) as conn:
        invite = create_invite(conn, "leaver@acme.test", timedelta(hours=1), "tests")
    assert dash.sql("SELECT count(*) FROM member_invites WHERE token_hash LIKE %s", f"%{invite.secret}%")[0][0] == 0
    client = httpx.Client(base_url=dash.url, timeout=30)
    page = client.get(f"/invite/{invite.secret}")
    assert page.status_code == 200 and "leaver@acme.test" in page.text
    link = f"/invite/{invite.secret}"
    short = client.post(link, data={"csrf": csrf_of(page.text), "password": "short", "confirm": "short"})
    assert short.status_code == 422
    chosen = "a long enough new password"
    done = client.post(link, data={"csrf": csrf_of(page.text), "password": chosen, "confirm": chosen})
    assert done.status_code == 303
    assert client.get(f"/invite/{invite.secret}").status_code == 404
    signed_in_client(dash.url, "leaver@acme.test", chosen)


def test_totp_once_enabled_is_asked_at_sign_in(dash: DashboardStage) -> None:
    dash.set_password("ci@acme.test")
    dash.sql("UPDATE member_credentials SET locked_until = NULL WHERE member = 'ci@acme.test'")
    client = signed_in_client(dash.url, "ci@acme.test")
    page = client.get("/account")
    secret = page.text.split('id="totp-key">')[1].split("<")[0]
    enabling_code = totp.code_at(secret, time.time())
    enabled = client.post("/account/totp", data={"csrf": csrf_of(page.text), "secret": secret, "code": enabling_code})
    assert enabled.status_code == 303
    sealed = dash.sql("SELECT totp_ciphertext FROM member_credentials WHERE member = 'ci@acme.test'")[0][0]
    assert secret.encode() not in bytes(sealed)
    fresh = httpx.Client(base_url=dash.url, timeout=30)
    answer = fresh.post(
        "/signin",
        data={"email": "ci@acme.test", "password": PASSWORD, "csrf": csrf_of(fresh.get("/signin").text), "next": "/"},
    )
    assert answer.headers["location"].startswith("/signin/code")
    assert fresh.get("/orgs/acme").status_code == 303  # not signed in until the code
    code_page = fresh.get("/signin/code")
    wrong_code = next(c for c in ("000000", "111111", "222222") if not totp.valid(secret, c, time.time()))
    wrong = fresh.post("/signin/code", data={"csrf": csrf_of(code_page.text), "code": wrong_code})
    assert wrong.status_code == 401
    # The code that turned TOTP on is spent: the app's next one (within the window) signs in.
    reused = fresh.post("/signin/code", data={"csrf": csrf_of(code_page.text), "code": enabling_code})
    assert reused.status_code == 401
    next_step = int(time.time() // totp.STEP_S) + 1
    next_code = totp.hotp(secret, next_step)
    right = fresh.post("/signin/code", data={"csrf": csrf_of(code_page.text), "code": next_code})
    assert right.status_code == 303 and fresh.get("/orgs/acme").status_code == 200

    # That code again, in another sign-in within its window: refused, counted, audited; an older one too.
    again = httpx.Client(base_url=dash.url, timeout=30)
    again.post(
        "/signin",
        data={"email": "ci@acme.test", "password": PASSWORD, "csrf": csrf_of(again.get("/signin").text), "next": "/"},
    )
    form = csrf_of(again.get("/signin/code").text)
    assert again.post("/signin/code", data={"csrf": form, "code": next_code}).status_code == 401
    older = totp.hotp(secret, next_step - 1)
    assert again.post("/signin/code", data={"csrf": form, "code": older}).status_code == 401
    assert again.get("/orgs/acme").status_code == 303
    reasons = dash.sql(
        "SELECT detail->>'reason' FROM audit_log WHERE actor = 'ci@acme.test' AND result = 'failed' ORDER BY id"
    )
    assert ("code_reused",) in reasons
    assert dash.sql("SELECT totp_last_step FROM member_credentials WHERE member = 'ci@acme.test'") == [(next_step,)]
    dash.sql("UPDATE member_credentials SET failed_signins = 0, locked_until = NULL WHERE member = 'ci@acme.test'")


def test_an_admin_suspends_and_resumes_from_the_list_through_the_write_path(dash: DashboardStage) -> None:
    admin = signed_in_client(dash.url, "admin@acme.test")
    listing = admin.get("/orgs/acme").text
    assert 'formaction="/orgs/acme/projects/crm/state"' in listing and 'form="state-form"' in listing
    token = csrf_of(listing)
    suspended = admin.post("/orgs/acme/projects/crm/state", data={"csrf": token, "state": "suspended"})
    assert suspended.status_code == 303
    assert dash.sql("SELECT state FROM projects WHERE ref = 'crm'") == [("suspended",)]
    assert "Resume crm" in admin.get("/orgs/acme").text
    assert admin.post("/orgs/acme/projects/crm/state", data={"csrf": token, "state": "absent"}).status_code == 422
    resumed = admin.post("/orgs/acme/projects/crm/state", data={"csrf": token, "state": "active"})
    assert resumed.status_code == 303 and dash.sql("SELECT state FROM projects WHERE ref = 'crm'") == [("active",)]
    developer = signed_in_client(dash.url, "dev@acme.test")
    form = {"csrf": csrf_of(developer.get("/tokens").text), "state": "suspended"}
    refused = developer.post("/orgs/acme/projects/crm/state", data=form)
    assert refused.status_code == 403 and dash.sql("SELECT state FROM projects WHERE ref = 'crm'") == [("active",)]


def test_members_invite_prints_a_link_and_stores_only_its_hash(dash: DashboardStage) -> None:
    argv = ["members", "invite", "Boss@Globex.test", "--expires", "2h", "--url", "https://platform.example.test/"]
    argv += ["--dsn", dash.stage.server.dsn, "--master-key", str(dash.stage.master_key)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[-1]
    assert link.startswith("https://platform.example.test/invite/")
    secret = link.rsplit("/", 1)[1]
    stored = dash.sql("SELECT token_hash, member FROM member_invites WHERE member = 'boss@globex.test'")
    assert stored and all(secret not in row[0] for row in stored)
    assert httpx.get(f"{dash.url}/invite/{secret}", timeout=30).status_code == 200
    refused = CliRunner().invoke(main, [*argv[:2], "nobody@acme.test", *argv[3:]])
    assert refused.exit_code != 0 and "member of no org" in refused.output
    never = CliRunner().invoke(main, [*argv[:3], "--expires", "never", *argv[5:]])
    assert never.exit_code != 0 and "always expires" in never.output


def test_members_invite_emails_the_link_when_the_platform_has_email_and_prints_it_otherwise(
    dash: DashboardStage, tmp_path
) -> None:
    """Against the Resend STAND-IN (it checks the key, the sender's verified domain and the body as Resend does):
    with a key file and a sender the link goes by email once (the invite's id as the idempotency key) and is not
    printed; a sender of an unverified domain is refused by Resend, and the link is printed for the operator."""
    from devkit.standins.resend import ResendStandin

    key = tmp_path / "resend.key"
    key.write_text("re_platform_key_for_the_test\n")
    key.chmod(0o600)
    base = ["members", "invite", "admin@acme.test", "--url", "https://platform.example.test"]
    base += ["--dsn", dash.stage.server.dsn, "--master-key", str(dash.stage.master_key)]
    with ResendStandin("re_platform_key_for_the_test", {"mail.platform.example"}) as resend:
        email = ["--resend-key-file", str(key), "--resend-url", resend.base_url]
        sent = CliRunner().invoke(main, [*base, *email, "--from", "NextMavens <invites@mail.platform.example>"])
        assert sent.exit_code == 0, sent.output
        assert "/invite/" not in sent.output and "Invite emailed to admin@acme.test" in sent.output
        (mail,) = resend.state.sent
        assert mail.body["to"] == ["admin@acme.test"] and mail.body["from"].endswith("<invites@mail.platform.example>")
        link = next(word for word in mail.body["text"].split() if "/invite/" in word)
        assert link.startswith("https://platform.example.test/invite/") and f'href="{link}"' in mail.body["html"]
        assert mail.idempotency_key is not None and mail.idempotency_key.startswith("nextmavens-invite/inv")
        assert httpx.get(f"{dash.url}/invite/{link.rsplit('/', 1)[1]}", timeout=30).status_code == 200

        refused = CliRunner().invoke(main, [*base, *email, "--from", "invites@elsewhere.example"])
        assert refused.exit_code == 0 and "could not be emailed" in refused.output
        assert "https://platform.example.test/invite/" in refused.stdout and len(resend.state.sent) == 1
    printed = CliRunner().invoke(main, base)  # no email configured: printed, as before
    assert printed.exit_code == 0 and printed.stdout.strip().splitlines()[-1].startswith(
        "https://platform.example.test/invite/"
    )
