"""Every endpoint × every kind of caller, against a real service and database: the status each answers, the
audit rows each writes (writes and refusals, never plain reads), and no secret in any body or log line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import access
from nextmavens.platform.issuing import revoke
from nextmavens.platform.tokens import new_token
from tests.integration.platform.harness import EVOLUTION_KEY, PlatformStage


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | list[dict[str, str]] | None = None
    write: bool = False


CALLS = {
    "me": Call("GET", "/v1/me"),
    "list": Call("GET", "/v1/projects"),
    "shop": Call("GET", "/v1/projects/acme/shop"),
    "crm": Call("GET", "/v1/projects/acme/crm"),
    "web": Call("GET", "/v1/projects/globex/web"),
    "missing": Call("GET", "/v1/projects/acme/nope"),
    "keys": Call("GET", "/v1/projects/acme/shop/keys"),
    "web_keys": Call("GET", "/v1/projects/globex/web/keys"),
    "rotate": Call("POST", "/v1/projects/acme/shop/keys/rotate", write=True),
    "rotate_crm": Call("POST", "/v1/projects/acme/crm/keys/rotate", write=True),
    "create_token": Call("POST", "/v1/tokens", {"name": "matrix"}, write=True),
    "wider_token": Call("POST", "/v1/tokens", {"name": "wider", "org": "acme"}, write=True),
    "tokens": Call("GET", "/v1/tokens"),
    "revoke_other": Call("DELETE", "/v1/tokens/{victim}", write=True),
    "members": Call("GET", "/v1/orgs/acme/members"),
    # The projects folder here is no git repository: an allowed write is refused as not set up (409).
    "create": Call(
        "POST",
        "/v1/projects",
        {"org": "acme", "ref": "newone", "name": "N", "site_url": "https://n.example"},
        write=True,
    ),
    "suspend": Call("PATCH", "/v1/projects/acme/shop", {"state": "suspended"}, write=True),
    "set_members": Call("PUT", "/v1/orgs/acme/members", [{"email": "owner@acme.test", "role": "owner"}], write=True),
    "audit": Call("GET", "/v1/orgs/acme/audit"),
    "logs": Call("GET", "/v1/projects/acme/shop/logs?service=rest"),
    "crm_logs": Call("GET", "/v1/projects/acme/crm/logs?service=auth"),
    "migrations": Call("GET", "/v1/projects/acme/shop/migrations"),
    # The first allowed caller applies it; the others find it applied (200, audited all the same).
    "migrate": Call(
        "POST",
        "/v1/projects/acme/shop/migrations",
        {"migrations": [{"version": "20250101000000", "name": "matrix", "sql": "create table matrix (id int)"}]},
        write=True,
    ),
    "migrate_web": Call(
        "POST", "/v1/projects/globex/web/migrations", {"migrations": [], "include_all": True}, write=True
    ),
    # WhatsApp, through the Evolution stand-in holding acme/shop's paired instance `orders`
    "wa_list": Call("GET", "/v1/projects/acme/shop/whatsapp"),
    "wa_status": Call("GET", "/v1/projects/acme/shop/whatsapp/orders/status"),
    "wa_connect": Call("POST", "/v1/projects/acme/shop/whatsapp/orders/connect", write=True),
    "wa_send": Call(
        "POST", "/v1/projects/acme/shop/whatsapp/orders/messages", {"number": "5511987654321", "text": "hi"}, write=True
    ),
    # SQL: read-only as the project's read-only role (developers), writes as its owner (admins, writing tokens)
    "sql_read": Call("POST", "/v1/projects/acme/shop/sql", {"query": "SELECT 1"}),
    "sql_write": Call("POST", "/v1/projects/acme/shop/sql", {"query": "SELECT 1", "read_only": False}, write=True),
    "sql_crm": Call("POST", "/v1/projects/acme/crm/sql", {"query": "SELECT 1"}),
    "tables": Call("GET", "/v1/projects/acme/shop/tables"),
    "extensions": Call("GET", "/v1/projects/acme/shop/extensions"),
    "types": Call("GET", "/v1/projects/acme/shop/types/typescript"),
    "crm_types": Call("GET", "/v1/projects/acme/crm/types/typescript"),
    # Monitoring (issue 18): reads like the project itself
    "metrics": Call("GET", "/v1/projects/acme/shop/metrics"),
    "uptime": Call("GET", "/v1/projects/acme/shop/uptime"),
    "alerts": Call("GET", "/v1/projects/acme/shop/alerts"),
    "crm_alerts": Call("GET", "/v1/projects/acme/crm/alerts"),
    "web_uptime": Call("GET", "/v1/projects/globex/web/uptime"),
}

PERSONAS = ["owner", "admin", "developer", "outsider", "dev_ro", "owner_ro", "dev_shop", "admin_shop"]
# Expected status per call, in PERSONAS order. The outsider is globex's owner; *_ro are read-only tokens;
# *_shop are scoped to acme/shop. The victim of revoke_other is another acme developer's org token.
EXPECTED = {
    "me": [200] * 8,
    "list": [200] * 8,
    "shop": [200, 200, 200, 404, 200, 200, 200, 200],
    "crm": [200, 200, 200, 404, 200, 200, 404, 404],
    "web": [404, 404, 404, 200, 404, 404, 404, 404],
    "missing": [404] * 8,
    "keys": [200, 200, 200, 404, 200, 200, 200, 200],
    "web_keys": [404, 404, 404, 200, 404, 404, 404, 404],
    "rotate": [200, 200, 403, 404, 403, 403, 403, 200],
    "rotate_crm": [200, 200, 403, 404, 403, 403, 404, 404],
    "create_token": [201, 201, 201, 201, 403, 403, 201, 201],
    "wider_token": [201, 201, 201, 404, 403, 403, 403, 403],
    "tokens": [200] * 8,
    "revoke_other": [200, 404, 404, 404, 404, 403, 404, 404],
    "members": [200, 200, 200, 404, 200, 200, 403, 403],
    "create": [409, 409, 403, 404, 403, 403, 403, 403],
    "suspend": [409, 409, 403, 404, 403, 403, 403, 409],
    "set_members": [409, 403, 403, 404, 403, 403, 403, 403],
    "audit": [200, 403, 403, 404, 403, 200, 403, 403],
    "logs": [200, 200, 200, 404, 200, 200, 200, 200],
    "crm_logs": [200, 200, 200, 404, 200, 200, 404, 404],
    "migrations": [200, 200, 200, 404, 200, 200, 200, 200],
    "migrate": [200, 200, 200, 404, 403, 403, 200, 200],
    "migrate_web": [404, 404, 404, 200, 404, 404, 404, 404],
    "wa_list": [200, 200, 200, 404, 200, 200, 200, 200],
    "wa_status": [200, 200, 200, 404, 200, 200, 200, 200],
    "wa_connect": [200, 200, 403, 404, 403, 403, 403, 200],
    "wa_send": [201, 201, 403, 404, 403, 403, 403, 201],
    "sql_read": [200, 200, 200, 404, 200, 200, 200, 200],
    "sql_write": [200, 200, 403, 404, 403, 403, 403, 200],
    "sql_crm": [200, 200, 200, 404, 200, 200, 404, 404],
    "tables": [200, 200, 200, 404, 200, 200, 200, 200],
    "extensions": [200, 200, 200, 404, 200, 200, 200, 200],
    "types": [200, 200, 200, 404, 200, 200, 200, 200],
    "crm_types": [200, 200, 200, 404, 200, 200, 404, 404],
    "metrics": [200, 200, 200, 404, 200, 200, 200, 200],
    "uptime": [200, 200, 200, 404, 200, 200, 200, 200],
    "alerts": [200, 200, 200, 404, 200, 200, 200, 200],
    "crm_alerts": [200, 200, 200, 404, 200, 200, 404, 404],
    "web_uptime": [404, 404, 404, 200, 404, 404, 404, 404],
}
UNAUTHENTICATED = ["expired", "revoked", "unknown", "malformed", "missing"]


@pytest.fixture(scope="module")
def personas(platform_stage: PlatformStage) -> dict[str, str]:
    issue = platform_stage.issue
    tokens = {
        "owner": issue("owner@acme.test"),
        "admin": issue("admin@acme.test"),
        "developer": issue("Dev@Acme.test"),  # emails match whatever their case
        "outsider": issue("boss@globex.test"),
        "dev_ro": issue("dev@acme.test", read_only=True),
        "owner_ro": issue("owner@acme.test", org="acme", read_only=True),
        "dev_shop": issue("dev@acme.test", org="acme", project="shop"),
        "admin_shop": issue("admin@acme.test", org="acme", project="shop"),
        "expired": issue("dev@acme.test", expires_at=datetime.now(UTC) - timedelta(seconds=1)),
        "revoked": issue("dev@acme.test"),
    }
    with connect_control(platform_stage.stage.server.dsn) as conn:
        record = access.token(conn, tokens["revoked"][0])
        assert record is not None
        revoke(conn, record, "tests")
    texts = {name: text for name, (_, text) in tokens.items()}
    texts["unknown"] = new_token()
    texts["malformed"] = "nmp_not-a-token"
    platform_stage.tokens.update(texts)
    return texts


@pytest.fixture(scope="module")
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=60) as session:
        yield session


BODIES: list[str] = []  # every body the matrix saw outside the keys and token-creation answers


def send(client: httpx.Client, call: Call, token: str | None, victim: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(call.method, call.path.format(victim=victim), json=call.body, headers=headers)


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("persona", PERSONAS)
def test_each_caller_gets_what_its_role_and_scope_allow(
    platform_stage: PlatformStage, personas: dict[str, str], client: httpx.Client, persona: str, name: str
) -> None:
    call = CALLS[name]
    expected = EXPECTED[name][PERSONAS.index(persona)]
    victim = platform_stage.issue("ci@acme.test", org="acme")[0] if name == "revoke_other" else ""
    before = platform_stage.audit_count()
    answer = send(client, call, personas[persona], victim)
    assert answer.status_code == expected, answer.text
    # Writes and refusals leave one audit row; a plain read leaves none.
    audited = call.write or expected >= 400
    assert platform_stage.audit_count() - before == (1 if audited else 0)
    if expected >= 400:
        error = answer.json()["error"]
        assert set(error) == {"code", "message"} and error["code"] in {
            "not_found",
            "forbidden",
            "no_manifest_repository",
        }
    if name not in ("keys", "web_keys", "create_token", "wider_token"):
        BODIES.append(answer.text)


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("persona", UNAUTHENTICATED)
def test_no_valid_token_is_401_everywhere_and_audited(
    platform_stage: PlatformStage, personas: dict[str, str], client: httpx.Client, persona: str, name: str
) -> None:
    before = platform_stage.audit_count()
    answer = send(client, CALLS[name], None if persona == "missing" else personas[persona], "tok_0")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert platform_stage.audit_count() - before == 1
    BODIES.append(answer.text)


def test_the_project_list_holds_only_what_the_token_sees(personas: dict[str, str], client: httpx.Client) -> None:
    def listed(persona: str) -> list[str]:
        answer = send(client, CALLS["list"], personas[persona])
        return [f"{p['org']}/{p['ref']}" for p in answer.json()["projects"]]

    assert listed("owner") == ["acme/crm", "acme/shop"]
    assert listed("outsider") == ["globex/web"]
    assert listed("dev_shop") == ["acme/shop"]


def test_keys_follow_the_role_and_never_include_the_jwt_secret(
    platform_stage: PlatformStage, personas: dict[str, str], client: httpx.Client
) -> None:
    secrets = platform_stage.stage.engine()
    with secrets.secrets() as store:
        current = store.project_secrets("shop")
    assert current is not None
    developer = send(client, CALLS["keys"], personas["developer"]).json()
    admin = send(client, CALLS["keys"], personas["admin"]).json()
    assert developer == {
        "project": "shop",
        "api_url": "https://shop.api.example.test",
        "anon_key": current.keys.anon,
        "keys_expire_at": developer["keys_expire_at"],
    }
    assert admin["service_role_key"] == current.keys.service_role
    assert set(admin) == set(developer) | {"service_role_key"}


def test_a_project_token_creates_only_its_own_scope(personas: dict[str, str], client: httpx.Client) -> None:
    created = send(client, CALLS["create_token"], personas["dev_shop"])
    assert created.status_code == 201
    body = created.json()
    assert (body["org"], body["project"], body["member"]) == ("acme", "shop", "dev@acme.test")
    narrower = client.post("/v1/tokens", json={"read_only": True}, headers={"Authorization": f"Bearer {body['token']}"})
    assert narrower.status_code == 201 and narrower.json()["read_only"] is True
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {narrower.json()['token']}"}).json()
    assert me["orgs"] == {"acme": "developer"} and me["token"]["read_only"] is True


def test_a_token_cannot_outlive_the_one_creating_it(platform_stage: PlatformStage, client: httpx.Client) -> None:
    _, short = platform_stage.issue("dev@acme.test", expires_at=datetime.now(UTC) + timedelta(hours=1))
    headers = {"Authorization": f"Bearer {short}"}
    assert client.post("/v1/tokens", json={"expires": "30d"}, headers=headers).status_code == 403
    assert client.post("/v1/tokens", json={"expires": "never"}, headers=headers).status_code == 403
    inherited = client.post("/v1/tokens", json={}, headers=headers).json()
    assert datetime.fromisoformat(inherited["expires_at"]) <= datetime.now(UTC) + timedelta(hours=1)


def test_owners_see_their_orgs_tokens_and_members_only_their_own(
    personas: dict[str, str], client: httpx.Client
) -> None:
    def members(persona: str) -> set[str]:
        listed = client.get("/v1/tokens", headers={"Authorization": f"Bearer {personas[persona]}"}).json()["tokens"]
        assert all("token" not in t and "token_hash" not in t for t in listed)
        return {t["member"] for t in listed}

    assert members("developer") == {"dev@acme.test"}
    assert {"owner@acme.test", "admin@acme.test", "dev@acme.test"} <= members("owner")
    assert "boss@globex.test" not in members("owner")
    assert members("outsider") == {"boss@globex.test"}


def test_the_audit_log_names_who_what_where_and_the_result(personas: dict[str, str], client: httpx.Client) -> None:
    entries = client.get(
        "/v1/orgs/acme/audit", params={"limit": 1000}, headers={"Authorization": f"Bearer {personas['owner']}"}
    ).json()["entries"]
    results = {(e["actor"], e["action"], e["project"], e["result"]) for e in entries}
    assert ("admin@acme.test", "keys.rotate", "shop", "ok") in results
    assert ("dev@acme.test", "keys.rotate", "shop", "forbidden") in results
    assert ("boss@globex.test", "keys.rotate", "shop", "not_found") in results
    assert not any(e["action"] in ("projects.read", "keys.read_anon") and e["result"] == "ok" for e in entries)


def test_no_secret_in_any_body_or_log_line(platform_stage: PlatformStage, personas: dict[str, str]) -> None:
    assert BODIES, "the matrix ran first"
    secrets = [token for token in personas.values() if len(token) > 20]
    with platform_stage.stage.engine().secrets() as store:
        for ref in ("shop", "crm", "web"):
            project = store.project_secrets(ref)
            assert project is not None
            secrets += [project.jwt_secret, project.keys.service_role, project.keys.anon, *project.passwords.values()]
    assert platform_stage.evolution is not None
    secrets += [EVOLUTION_KEY, *(i["token"] for i in platform_stage.evolution.instances.values())]
    logs = "\n".join(platform_stage.logs.lines)
    assert "GET /v1/projects" in logs  # the access log was captured
    for secret in secrets:
        assert secret not in logs
        assert not any(secret in body for body in BODIES)
