"""GET /v1/projects/{org}/{ref}/types/typescript: a contract test against the postgres-meta STAND-IN (the real
0.91.6 runs in the sandbox: tests/e2e/test_sandbox.py), which refuses what postgres-meta refuses and reads the
real PostgreSQL with the connection it is given. The service must give it the project's read-only role, in the
project's database, always through the encrypted header (never postgres-meta's own superuser connection)."""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.standins.postgresmeta import PostgresMetaStandIn
from nextmavens.platform.studiogate import cryptojs_encrypt, role_connection
from nextmavens.platform.typegen import TypesFailed, typescript_types
from tests.integration.platform.harness import META_KEY, PlatformStage, bearer, running_service

TYPES = "/v1/projects/acme/shop/types/typescript"


@pytest.fixture(scope="module")
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module", autouse=True)
def tables(platform_stage: PlatformStage) -> None:
    platform_stage.stage.sql(
        "CREATE TABLE IF NOT EXISTS public.orders (id int8 PRIMARY KEY, total numeric, note text);"
        "ALTER TABLE public.orders OWNER TO owner_shop;"
        "CREATE OR REPLACE VIEW public.big_orders AS SELECT id FROM public.orders WHERE total > 100;"
        "ALTER VIEW public.big_orders OWNER TO owner_shop;"
        "GRANT SELECT ON public.orders, public.big_orders TO readonly_shop;"
        "CREATE TABLE IF NOT EXISTS auth.hidden_secrets (hash text)",
        dbname="shop",
    )
    platform_stage.stage.sql("CREATE TABLE IF NOT EXISTS public.crm_contacts (x int)", dbname="crm")


def shop_password(platform_stage: PlatformStage, role: str = "readonly_shop") -> str:
    with platform_stage.stage.engine().secrets() as store:
        secrets = store.project_secrets("shop")
    assert secrets is not None
    return secrets.passwords[role]


def test_a_developer_gets_the_types_generated_as_the_read_only_role(
    platform_stage: PlatformStage, client: httpx.Client
) -> None:
    meta = platform_stage.meta
    assert meta is not None
    meta.record.seen.clear()
    answer = client.get(TYPES, headers=bearer(platform_stage, "dev@acme.test", read_only=True))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["project"] == "acme/shop" and body["schemas"] == ["public"]
    types = body["types"]
    assert "export type Database = {" in types and "  public: {" in types
    assert "      orders: {" in types and "          total: number | null" in types and "big_orders" in types
    assert "hidden_secrets" not in types and "crm_contacts" not in types and "auth" not in types
    assert meta.record.seen == [{"path": "/generators/typescript", "user": "readonly_shop", "database": "/shop"}]
    assert meta.record.default_used == 0
    assert shop_password(platform_stage) not in answer.text


def test_another_project_or_org_is_not_reached(platform_stage: PlatformStage, client: httpx.Client) -> None:
    meta = platform_stage.meta
    assert meta is not None
    meta.record.seen.clear()
    scoped = bearer(platform_stage, "dev@acme.test", org="acme", project="shop")
    assert client.get("/v1/projects/acme/crm/types/typescript", headers=scoped).status_code == 404
    outsider = bearer(platform_stage, "boss@globex.test")
    assert client.get(TYPES, headers=outsider).status_code == 404
    assert meta.record.seen == []


def test_postgresql_refuses_the_read_only_role_in_another_projects_database(platform_stage: PlatformStage) -> None:
    """What the service's connection rests on: were the database name changed, PostgreSQL itself refuses it, and
    the error carries neither the password nor the connection string."""
    meta = platform_stage.meta
    assert meta is not None
    password = shop_password(platform_stage)
    host, port = "127.0.0.1", int(platform_stage.stage.server.port)
    crm = role_connection(host, port, "shop", "readonly_shop", password, "test").replace("/shop?", "/crm?")
    with pytest.raises(TypesFailed) as refused:
        typescript_types(meta.base_url, META_KEY, crm, ["public"], secrets=[password])
    assert "permission denied for database" in refused.value.message
    assert password not in refused.value.message and "postgresql://" not in refused.value.message


def test_a_wrong_crypto_key_is_refused_by_postgres_meta_before_any_database(
    platform_stage: PlatformStage, tmp_path: Path
) -> None:
    meta = platform_stage.meta
    assert meta is not None
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-postgres-metas-key\n")
    wrong.chmod(0o600)
    meta.record.seen.clear()
    with running_service(platform_stage.settings(studio_meta_key_file=wrong)) as url:
        answer = httpx.get(url + TYPES, headers=bearer(platform_stage, "dev@acme.test"), timeout=60)
    assert answer.status_code == 502, answer.text
    body = answer.json()["error"]
    assert body["code"] == "postgres_meta_failed" and "upstream connection details" in body["message"]
    assert meta.record.seen == [] and meta.record.default_used == 0


def test_without_postgres_meta_the_answer_is_503(platform_stage: PlatformStage) -> None:
    with running_service(platform_stage.settings(postgres_meta_url=None)) as url:
        answer = httpx.get(url + TYPES, headers=bearer(platform_stage, "dev@acme.test"), timeout=60)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "types_unavailable", answer.text


@pytest.fixture
def held_meta() -> Iterator[tuple[str, queue.Queue[str], threading.Event]]:
    """A postgres-meta that answers each generation only once `release` is set; `arrived` gets each request's
    database as it comes in (the connection is not read: only when the service's guard lets a request through)."""
    arrived: queue.Queue[str] = queue.Queue()
    release = threading.Event()

    class Held(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            arrived.put(self.path)
            release.wait(60)
            body = b"export type Database = {}\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Held)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", arrived, release
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_one_generation_per_project_at_a_time(
    platform_stage: PlatformStage, held_meta: tuple[str, queue.Queue[str], threading.Event]
) -> None:
    """Each generation holds a request thread and a postgres-meta session for up to a minute: a second one for the
    same project while the first runs is 429 at once (never sent to postgres-meta); another project's goes on."""
    meta_url, arrived, release = held_meta
    headers = bearer(platform_stage, "dev@acme.test")
    answers: dict[str, Any] = {}

    def fetch(url: str, ref: str) -> None:
        answers[ref] = httpx.get(f"{url}/v1/projects/acme/{ref}/types/typescript", headers=headers, timeout=60)

    with running_service(platform_stage.settings(postgres_meta_url=meta_url)) as url:
        first = threading.Thread(target=fetch, args=(url, "shop"))
        first.start()
        assert arrived.get(timeout=30).startswith("/generators/typescript")  # shop's generation is under way
        again = httpx.get(url + TYPES, headers=headers, timeout=60)
        other = threading.Thread(target=fetch, args=(url, "crm"))
        other.start()
        assert arrived.get(timeout=30).startswith("/generators/typescript")  # crm's runs beside shop's
        release.set()
        first.join(60)
        other.join(60)
        refused_never_sent = arrived.empty()  # the 429 never reached postgres-meta
        after = httpx.get(url + TYPES, headers=headers, timeout=60)  # the slot is given back
    assert again.status_code == 429 and again.json()["error"]["code"] == "rate_limited", again.text
    assert "acme/shop" in again.json()["error"]["message"]
    assert answers["shop"].status_code == 200 and answers["crm"].status_code == 200, answers
    assert refused_never_sent
    assert after.status_code == 200 and arrived.qsize() == 1, after.text


def _raw(meta: PostgresMetaStandIn, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(meta.base_url + "/generators/typescript?included_schemas=public", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback stand-in
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_standin_keeps_postgres_metas_contract(platform_stage: PlatformStage) -> None:
    """The facts (typegen.FACTS) the service relies on: a client's `pg` header is ignored and, without the
    encrypted header, its own default (superuser) connection serves; a header it cannot decrypt is a 500."""
    meta = platform_stage.meta
    assert meta is not None
    before = meta.record.default_used
    status, _ = _raw(meta, {"pg": "postgresql://readonly_shop:x@127.0.0.1:1/shop"})
    assert status == 200 and meta.record.default_used == before + 1
    status, body = _raw(meta, {"x-connection-encrypted": cryptojs_encrypt("postgresql://u:p@h/db", "another key")})
    assert status == 500 and json.loads(body) == {"error": "failed to process upstream connection details"}
    status, body = _raw(meta, {"x-connection-encrypted": cryptojs_encrypt("not a url", META_KEY)})
    assert status == 500 and "upstream connection details" in body
