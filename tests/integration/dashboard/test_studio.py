"""Studio for a project, STAND-IN upstreams behind a real nginx (the vhost and meta gate the edge renders) and the
real platform service over a real PostgreSQL: the dashboard's "Open Studio", the cookie on the Studio name, nginx's
auth_request on every request, and the meta gate swapping Studio's connection for the project's owner role.

Studio itself cannot run here: each project's Studio is the image's stand-in in its Studio role (a process started
with the environment `studiogate.studio_env` gives it; its pg-meta API passes requests on with the connection Studio
builds from that environment), and postgres-meta is a stand-in that echoes the connection header it was given
(which the test decrypts with CRYPTO_KEY and logs in with, against the real PostgreSQL)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from nextmavens.control.crypto import load_master_key
from nextmavens.edge.nginx import render_nginx
from nextmavens.naming import project_names
from nextmavens.platform.routes.studio import StudioKeys
from nextmavens.platform.sessions import secret_hash
from nextmavens.platform.studiogate import (
    COOKIE,
    StudioGrant,
    cryptojs_decrypt,
    cryptojs_encrypt,
    derive_key,
    read_grant,
    sign_grant,
    studio_env,
    studio_token,
)
from tests.integration.dashboard.harness import DashboardStage, csrf_of, dashboard_stage, signed_in_client
from tests.support.edgesamples import settings
from tests.support.localnginx import LocalNginx, need, self_signed, wait_port
from tests.support.loopback import QuietHandler, serving
from tests.support.ports import free_ports
from tests.support.standins import studio_standin_process

pytestmark = pytest.mark.integration

STUDIO = "studio-projects.example.test"
PLATFORM = "platform.example.test"
META_KEY = "meta-crypto-key-for-the-test-0123456789"
DB_ADDRESS = "db.internal:5432"


class _MetaStandIn(QuietHandler):
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802
        with self.lock:
            self.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.reply_json(200, {"meta": True, "path": self.path})


@dataclass
class StudioStage:
    dash: DashboardStage
    https: int
    gate: int
    meta_seen: list[dict[str, str]]
    master_key: Path

    def keys(self) -> tuple[bytes, bytes, str]:
        master = load_master_key(self.master_key)
        return derive_key(master, "grant"), derive_key(master, "token"), derive_key(master, "studio-crypto").hex()


def write_meta_key(base: Path) -> Path:
    """postgres-meta's CRYPTO_KEY in a 0600 file, as the service reads it."""
    meta_key = base / "meta.key"
    meta_key.write_text(META_KEY + "\n")
    meta_key.chmod(0o600)
    return meta_key


@contextmanager
def studio_edge(
    pg_template: Any, base: Path, prefix: str, members: tuple[str, ...], **studio_settings: Any
) -> Iterator[tuple[DashboardStage, tuple[int, int, int], list[dict[str, str]]]]:
    """The platform service (these Studio settings; these members given passwords) behind the edge's nginx for the
    Studio name and the meta gate, postgres-meta's stand-in behind the gate: (the stage, the (http, https, gate)
    ports, the headers postgres-meta saw), nginx answering."""
    ports = free_ports(3)
    seen: list[dict[str, str]] = []
    with (
        serving(type("Meta", (_MetaStandIn,), {"seen": seen})) as meta_port,
        dashboard_stage(
            pg_template,
            prefix,
            studio_url=f"https://{STUDIO}:{ports[1]}",
            studio_meta_key_file=write_meta_key(base),
            **studio_settings,
        ) as dash,
    ):
        for member in members:
            dash.set_password(member)
        nginx = studio_nginx(base, dash, ports, meta_port)
        nginx.start()
        try:
            wait_port(ports[1])
            wait_port(ports[2])
            yield dash, ports, seen
        finally:
            nginx.stop()


@pytest.fixture(scope="module")
def studio(pg_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioStage]:
    need("nginx")
    shop_port, web_port = free_ports(2)
    upstreams = (("shop", f"127.0.0.1:{shop_port}"), ("web", f"127.0.0.1:{web_port}"))
    members = ("admin@acme.test", "dev@acme.test", "boss@globex.test")
    base = tmp_path_factory.mktemp("studio-nginx")
    with studio_edge(
        pg_template, base, "nextmavens-studio-", members, studio_upstreams=upstreams, studio_db_address=DB_ADDRESS
    ) as (dash, (_, https_port, gate_port), seen):
        keys = StudioKeys(load_master_key(dash.stage.master_key))
        gate_url = f"http://127.0.0.1:{gate_port}"

        def env(ref: str) -> dict[str, str]:
            return studio_env(ref, studio_token(keys.token, ref), keys.studio_crypto, gate_url)

        with (
            studio_standin_process(shop_port, env("shop"), "studio-shop"),
            studio_standin_process(web_port, env("web"), "studio-web"),
        ):
            yield StudioStage(dash, https_port, gate_port, seen, dash.stage.master_key)


def studio_nginx(base: Path, dash: DashboardStage, ports: tuple[int, int, int], meta_port: int) -> LocalNginx:
    """The edge's nginx (not started) for the Studio name, the platform's name and the meta gate, on loopback ports
    (http, https, gate), with self-signed certificates for both names."""
    http_port, https_port, gate_port = ports
    letsencrypt = base / "letsencrypt"
    for name in (STUDIO, PLATFORM):
        self_signed(letsencrypt / "live" / name, name)
    config = settings(
        listen_address="127.0.0.1",
        http_port=http_port,
        https_port=https_port,
        letsencrypt_dir=str(letsencrypt),
        acme_webroot=str(base / "webroot"),
        platform_domain=PLATFORM,
        platform_upstream=dash.url.removeprefix("http://"),
        project_studio_domain=STUDIO,
        studio_meta_gate_listen=f"127.0.0.1:{gate_port}",
        studio_meta_gate_source="127.0.0.1",
        postgres_meta_upstream=f"127.0.0.1:{meta_port}",
    )
    nginx = LocalNginx(base / "nginx")
    nginx.site.write_text(render_nginx(config, [], {STUDIO, PLATFORM}))
    return nginx


def tls_get(
    port: int, host: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=host)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def plain_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def open_studio(client: httpx.Client, org: str, ref: str) -> httpx.Response:
    """The project page's "Open Studio" form, posted with the session's CSRF token."""
    return client.post(f"/studio/open/{org}/{ref}", data={"csrf": csrf_of(client.get("/tokens").text)})


def studio_cookie(stage: StudioStage, client: httpx.Client, org: str, ref: str) -> str:
    """Open Studio from the dashboard and follow the ticket through nginx: the nm_studio cookie it sets."""
    opened = open_studio(client, org, ref)
    assert opened.status_code == 303, opened.text
    target = urlsplit(opened.headers["location"])
    assert (target.hostname, target.port, target.path) == (STUDIO, stage.https, "/__nextmavens/studio/enter")
    status, headers, _ = tls_get(stage.https, STUDIO, f"{target.path}?{target.query}")
    assert status == 303 and headers["location"] == "/project/default"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return cookie.split(";")[0]


def test_an_admin_reaches_studio_for_their_own_project_and_studio_never_sees_the_cookie(studio: StudioStage) -> None:
    client = signed_in_client(studio.dash.url, "admin@acme.test")
    page = client.get("/orgs/acme/projects/shop").text
    assert 'action="/studio/open/acme/shop"' in page
    cookie = studio_cookie(studio, client, "acme", "shop")
    status, _, body = tls_get(studio.https, STUDIO, "/project/default", {"Cookie": f"{cookie}; theme=dark"})
    answer = json.loads(body)
    assert status == 200 and answer["project"] == "shop" and answer["path"] == "/project/default"
    assert answer["cookies"] == ["theme"]
    rows = studio.dash.sql(
        "SELECT actor, result FROM audit_log WHERE action = 'studio.open' AND project = 'shop'"
    )
    assert ("admin@acme.test", "ok") in rows


def test_each_project_goes_to_its_own_studio(studio: StudioStage) -> None:
    client = signed_in_client(studio.dash.url, "boss@globex.test")
    cookie = studio_cookie(studio, client, "globex", "web")
    status, _, body = tls_get(studio.https, STUDIO, "/", {"Cookie": cookie})
    assert status == 200 and json.loads(body)["project"] == "web"


def test_another_orgs_project_is_refused_when_opened_and_when_a_grant_names_it(studio: StudioStage) -> None:
    client = signed_in_client(studio.dash.url, "admin@acme.test")
    assert open_studio(client, "globex", "web").status_code == 404
    # A genuine signature over this member's live session, naming another org's project: nginx still refuses.
    grant_key = studio.keys()[0]
    own = read_grant(grant_key, "cookie", studio_cookie(studio, client, "acme", "shop").split("=", 1)[1], 0)
    assert own is not None
    foreign = sign_grant(grant_key, "cookie", replace(own, org="globex", ref="web"))
    status, _, body = tls_get(studio.https, STUDIO, "/", {"Cookie": f"{COOKIE}={foreign}"})
    assert status == 403 and b'"project"' not in body


def test_a_developer_is_refused(studio: StudioStage) -> None:
    client = signed_in_client(studio.dash.url, "dev@acme.test")
    assert 'action="/studio/open/' not in client.get("/orgs/acme/projects/shop").text
    assert open_studio(client, "acme", "shop").status_code == 403
    grant = StudioGrant("acme", "shop", secret_hash(client.cookies["nm_session"]), 4_000_000_000)
    forged = sign_grant(studio.keys()[0], "cookie", grant)
    status, _, body = tls_get(studio.https, STUDIO, "/", {"Cookie": f"{COOKIE}={forged}"})
    assert status == 403 and b'"project"' not in body


def test_no_session_a_forged_cookie_and_a_signed_out_session_are_refused(studio: StudioStage) -> None:
    assert tls_get(studio.https, STUDIO, "/")[0] == 401
    client = signed_in_client(studio.dash.url, "admin@acme.test")
    cookie = studio_cookie(studio, client, "acme", "shop")
    name, value = cookie.split("=", 1)
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    assert tls_get(studio.https, STUDIO, "/", {"Cookie": f"{name}={forged}"})[0] == 401
    # A ticket is not a cookie, and a cookie is not a ticket.
    assert tls_get(studio.https, STUDIO, f"/__nextmavens/studio/enter?ticket={value}")[0] == 401
    assert tls_get(studio.https, STUDIO, "/", {"Cookie": cookie})[0] == 200
    out = client.post("/signout", data={"csrf": csrf_of(client.get("/tokens").text)})
    assert out.status_code == 303
    assert tls_get(studio.https, STUDIO, "/", {"Cookie": cookie})[0] == 401


def test_the_whole_path_browser_nginx_studio_gate_postgres_meta_as_the_owner_role(studio: StudioStage) -> None:
    """The admin's browser asks shop's Studio (the stand-in) for its tables; Studio sends postgres-meta the
    connection it builds from its own environment (a token, no password); the gate swaps in shop's owner role."""
    client = signed_in_client(studio.dash.url, "admin@acme.test")
    cookie = studio_cookie(studio, client, "acme", "shop")
    studio.meta_seen.clear()
    status, _, body = tls_get(studio.https, STUDIO, "/api/platform/pg-meta/default/tables", {"Cookie": cookie})
    assert status == 200 and json.loads(body) == {"meta": True, "path": "/tables"}
    (seen,) = studio.meta_seen
    connection = cryptojs_decrypt(seen["x-connection-encrypted"], META_KEY)
    assert connection is not None and urlsplit(connection).username == project_names("shop").owner
    assert urlsplit(connection).path == f"/{project_names('shop').database}"
    # Studio refuses what it refuses: its query route takes POST only.
    assert tls_get(studio.https, STUDIO, "/api/platform/pg-meta/default/query", {"Cookie": cookie})[0] == 405


def studio_header(
    stage: StudioStage, ref: str, database: str | None = None, key: str | None = None, user: str = "postgres"
) -> str:
    """What a project's Studio sends postgres-meta: its own connection string, built from its environment
    (POSTGRES_PASSWORD = the project's token, POSTGRES_DB = its database), encrypted with its PG_META_CRYPTO_KEY."""
    _, token_key, studio_crypto = stage.keys()
    database = database or project_names(ref).database
    connection = f"postgres://{user}:{studio_token(token_key, ref)}@{DB_ADDRESS}/{database}"
    return cryptojs_encrypt(connection, key or studio_crypto)


def test_the_meta_gate_gives_postgres_meta_the_projects_owner_role_and_database_only(studio: StudioStage) -> None:
    studio.meta_seen.clear()
    sent = {"x-connection-encrypted": studio_header(studio, "shop"), "pg": "postgres://supabase_admin@x/postgres"}
    status, body = plain_get(studio.gate, "/tables?include_system_schemas=false", sent)
    assert status == 200 and json.loads(body)["path"] == "/tables?include_system_schemas=false"
    (seen,) = studio.meta_seen
    assert "pg" not in seen or seen["pg"] == ""
    connection = cryptojs_decrypt(seen["x-connection-encrypted"], META_KEY)
    assert connection is not None
    parts = urlsplit(connection)
    names = project_names("shop")
    assert (parts.username, parts.path, f"{parts.hostname}:{parts.port}") == (
        names.owner,
        f"/{names.database}",
        DB_ADDRESS,
    )
    # The password is the owner role's own: it logs in to the project's database, as no superuser.
    server = studio.dash.stage.server
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user=parts.username, password=parts.password, dbname=names.database
    ) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (names.owner, names.database, False)


def test_the_gate_keeps_the_sealed_passwords_a_short_while_instead_of_unsealing_them_on_every_request(
    studio: StudioStage,
) -> None:
    """With shop's sealed owner password renamed away in the control database, the gate still answers from what it
    read a moment ago (the service's RoleLogins, 30 s); crm, never asked before, is read at once and refused."""
    header = {"x-connection-encrypted": studio_header(studio, "shop")}
    assert plain_get(studio.gate, "/tables", header)[0] == 200
    owner, crm_owner = project_names("shop").owner, project_names("crm").owner
    moved = "UPDATE secrets SET name = name || ':moved' WHERE scope = %s AND name = %s"
    studio.dash.sql(moved, "shop", f"password:{owner}")
    studio.dash.sql(moved, "crm", f"password:{crm_owner}")
    try:
        assert plain_get(studio.gate, "/tables", header)[0] == 200
        crm = {"x-connection-encrypted": studio_header(studio, "crm")}
        assert plain_get(studio.gate, "/tables", crm)[0] == 403
    finally:
        back = "UPDATE secrets SET name = %s WHERE scope = %s AND name = %s"
        studio.dash.sql(back, f"password:{owner}", "shop", f"password:{owner}:moved")
        studio.dash.sql(back, f"password:{crm_owner}", "crm", f"password:{crm_owner}:moved")


def test_studios_read_only_user_gets_the_projects_read_only_login_not_its_owner(studio: StudioStage) -> None:
    """Studio runs its read-only queries as `supabase_read_only_user`: the gate answers with the project's read-only
    role, which logs in to the project's database and cannot write there."""
    studio.meta_seen.clear()
    sent = {"x-connection-encrypted": studio_header(studio, "shop", user="supabase_read_only_user")}
    status, _ = plain_get(studio.gate, "/query", sent)
    assert status == 200
    connection = cryptojs_decrypt(studio.meta_seen[0]["x-connection-encrypted"], META_KEY)
    assert connection is not None
    parts = urlsplit(connection)
    names = project_names("shop")
    assert (parts.username, parts.path) == (names.readonly, f"/{names.database}")
    server = studio.dash.stage.server
    with psycopg.connect(
        host="127.0.0.1",
        port=server.port,
        user=parts.username,
        password=parts.password,
        dbname=names.database,
        autocommit=True,
    ) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (names.readonly,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE public.studio_wrote_here (id int)")
        conn.execute("SET default_transaction_read_only = off")  # even with the session's default lifted
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.studio_wrote_here (id int)")


@pytest.mark.parametrize(
    "case",
    [
        "no header",
        "another project's database",
        "another key",
        "not encrypted",
        "suspended or unknown project",
        "another user name",
    ],
)
def test_the_meta_gate_refuses_anything_else_and_postgres_meta_never_sees_it(studio: StudioStage, case: str) -> None:
    studio.meta_seen.clear()
    headers = {
        "no header": {},
        "another project's database": {"x-connection-encrypted": studio_header(studio, "shop", "web")},
        "another key": {"x-connection-encrypted": studio_header(studio, "shop", key=META_KEY)},
        "not encrypted": {"x-connection-encrypted": "postgres://postgres:x@db/shop"},
        "suspended or unknown project": {"x-connection-encrypted": studio_header(studio, "nosuch")},
        "another user name": {"x-connection-encrypted": studio_header(studio, "shop", user="owner_shop")},
    }[case]
    status, _ = plain_get(studio.gate, "/tables", headers)
    assert status == 403 and studio.meta_seen == []


def test_the_platforms_own_name_does_not_answer_the_gates_check(studio: StudioStage) -> None:
    header = {"x-connection-encrypted": studio_header(studio, "shop")}
    status, _, _ = tls_get(studio.https, PLATFORM, "/studio/meta-auth", header)
    assert status == 404


def test_in_a_browser_an_admin_opens_studio_for_their_project_and_not_for_another_orgs(
    studio: StudioStage, tmp_path: Path
) -> None:
    """Debian's chromium (Playwright, executable_path): the project page's "Open Studio" link through the ticket to
    shop's Studio behind nginx; another org's project is not found; a fresh browser without the cookie gets 401."""
    from playwright.sync_api import sync_playwright

    from tests.integration.dashboard.browser import ARGS, CHROMIUM, sign_in
    from tests.integration.dashboard.harness import PASSWORD

    need(CHROMIUM)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[*ARGS, f"--host-resolver-rules=MAP {STUDIO} 127.0.0.1"],
            ignore_https_errors=True,  # the test's self-signed certificate
        )
        try:
            page = context.new_page()
            sign_in(page, studio.dash.url, "admin@acme.test", PASSWORD)
            page.goto(f"{studio.dash.url}/orgs/acme/projects/shop")
            page.get_by_role("button", name="Open Studio").click()
            page.wait_for_url(f"https://{STUDIO}:{studio.https}/project/default")
            answer = json.loads(page.locator("body").inner_text())
            assert answer["project"] == "shop" and answer["cookies"] == []
            # A link (another site's, a top-level GET with the Lax cookie) only reaches the project page's button
            followed = page.goto(f"{studio.dash.url}/studio/open/globex/web")
            assert followed is not None and followed.status == 404 and page.url.endswith("/orgs/globex/projects/web")
        finally:
            context.close()
        fresh = playwright.chromium.launch_persistent_context(
            str(tmp_path / "fresh"),
            executable_path=CHROMIUM,
            headless=True,
            args=[*ARGS, f"--host-resolver-rules=MAP {STUDIO} 127.0.0.1"],
            ignore_https_errors=True,
        )
        try:
            answer_without = fresh.new_page().goto(f"https://{STUDIO}:{studio.https}/project/default")
            assert answer_without is not None and answer_without.status == 401
        finally:
            fresh.close()
