"""Evolution's webhooks through the running service into a real project database: signed by the instance's
secret, stored as the project's owner role, idempotent, every refusal alike, 413, 429, and 503 while the
database is down (then stored once it is back)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from nextmavens.edge.whatsappinstances import DesiredInstance
from tests.integration.platform.harness import (
    PlatformStage,
    captured_logs,
    running_service,
    service_settings,
    write_manifests,
)
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.scratch import cloned_server
from tests.support.standins import IMAGE, EvolutionStandIn

SHOP = "/hooks/evolution/acme/shop"
HOOK_URL = "https://shop.example/whatsapp"
# The forwarder's first pass runs before any row exists; none after: these tests post nothing anywhere.
NO_FORWARDING = {"forward_poll_s": 3600.0}


def extra_manifests(stage_projects: Any) -> None:
    write_project(
        stage_projects,
        "acme",
        "shop",
        whatsapp={"instances": [{"name": "sales", "webhook_url": HOOK_URL}, {"name": "support"}]},
    )
    write_project(stage_projects, "globex", "web", whatsapp={"instances": [{"name": "sales"}]})
    write_project(stage_projects, "acme", "crm", state="suspended", whatsapp={"instances": [{"name": "sales"}]})
    write_project(stage_projects, "globex", "blog", whatsapp={"instances": [{"name": "main"}]})  # tables dropped


@pytest.fixture(scope="module")
def hooks_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with cloned_server(pg_template, "nextmavens-hooks-") as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        extra_manifests(projects)
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        stage.sql("DROP SCHEMA whatsapp CASCADE", dbname="blog")  # a database the tables are missing from
        settings = service_settings(stage, pool_timeout_s=2.0, hook_max_body_bytes=64 * 1024, **NO_FORWARDING)
        with captured_logs() as logs, running_service(settings) as url:
            yield PlatformStage(stage=stage, url=url, logs=logs)


@pytest.fixture(scope="module")
def client(hooks_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hooks_stage.url, timeout=30) as session:
        yield session


def webhook_secret(stage: PlatformStage, ref: str, instance: str) -> str:
    with stage.stage.engine().secrets() as store:
        pair = store.whatsapp_secrets(ref, instance)
    assert pair is not None
    return pair[1]


def token(secret: str, iat: float | None = None, exp: float | None = None, **claims: Any) -> str:
    """Evolution's token: HS256, {iat, exp: iat + 600, app, action}."""
    issued = int(time.time()) if iat is None else int(iat)
    payload = {"iat": issued, "exp": issued + 600 if exp is None else int(exp), "app": "evolution"}
    payload |= {"action": "webhook", **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def upsert(message_id: str, instance: str = "shop--sales", text: str = "hello there") -> dict[str, Any]:
    return {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {"remoteJid": "5511999990000@s.whatsapp.net", "fromMe": False, "id": message_id},
            "pushName": "Ana",
            "status": "DELIVERY_ACK",
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": 1_764_660_000,
            "source": "android",
        },
        "destination": "https://platform.example/hooks/evolution/acme/shop/sales",
        "date_time": "2026-12-02T05:00:00.000Z",
        "server_url": "http://evolution:8080",
        "apikey": None,
    }


def post(client: httpx.Client, path: str, body: Any, bearer: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers=headers)


def shop(stage: PlatformStage, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return stage.stage.sql(query, params, dbname="shop")


def count(stage: PlatformStage, message_id: str) -> int:
    return int(shop(stage, "SELECT count(*) FROM whatsapp.messages WHERE message_id = %s", (message_id,))[0][0])


def test_a_signed_message_is_stored_by_the_owner_role_and_a_resend_adds_nothing(
    hooks_stage: PlatformStage, client: httpx.Client
) -> None:
    secret = webhook_secret(hooks_stage, "shop", "sales")
    signed = token(secret)
    first = post(client, f"{SHOP}/sales", upsert("M-1"), signed)
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": True}
    again = post(client, f"{SHOP}/sales", upsert("M-1"), signed)  # Evolution retries with the same token
    assert again.status_code == 200 and again.json() == {"stored": False}
    rows = shop(
        hooks_stage,
        "SELECT instance, remote_jid, from_me, type, text, payload->'data'->'key'->>'id', sent_at IS NOT NULL,"
        " forward_pending FROM whatsapp.messages WHERE message_id = 'M-1'",
    )
    assert rows == [("sales", "5511999990000@s.whatsapp.net", False, "conversation", "hello there", "M-1", True, True)]
    sessions = shop(
        hooks_stage,
        "SELECT a.usename, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename"
        " WHERE a.application_name = 'nextmavens-webhooks' AND a.datname = 'shop'",
    )
    assert sessions and set(sessions) == {("owner_shop", False)}


def test_an_instance_without_webhook_url_stores_rows_not_pending_and_events_go_to_their_table(
    hooks_stage: PlatformStage, client: httpx.Client
) -> None:
    secret = webhook_secret(hooks_stage, "shop", "support")
    answer = post(client, f"{SHOP}/support", upsert("S-1", instance="shop--support"), token(secret))
    assert answer.status_code == 200 and answer.json() == {"stored": True}
    assert shop(hooks_stage, "SELECT forward_pending FROM whatsapp.messages WHERE message_id = 'S-1'") == [(False,)]
    event = {"event": "connection.update", "instance": "shop--support", "data": {"state": "open", "statusReason": 200}}
    for expected in (True, False):
        answer = post(client, f"{SHOP}/support", event, token(secret))
        assert answer.status_code == 200 and answer.json() == {"stored": expected}
    assert shop(hooks_stage, "SELECT instance, event, state FROM whatsapp.events") == [
        ("support", "connection.update", "open")
    ]


def test_every_refusal_answers_the_same_401_and_stores_nothing(
    hooks_stage: PlatformStage, client: httpx.Client
) -> None:
    secret = webhook_secret(hooks_stage, "shop", "sales")
    other_project = webhook_secret(hooks_stage, "web", "sales")
    other_instance = webhook_secret(hooks_stage, "shop", "support")
    suspended = webhook_secret(hooks_stage, "crm", "sales")
    now = time.time()
    body = upsert("R-1", text="secret words")
    cases = {
        "forged": (f"{SHOP}/sales", body, token("x" * 64)),
        "no token": (f"{SHOP}/sales", body, None),
        "expired": (f"{SHOP}/sales", body, token(secret, iat=now - 700, exp=now - 100)),
        "future": (f"{SHOP}/sales", body, token(secret, iat=now + 300)),
        "wrong action": (f"{SHOP}/sales", body, token(secret, action="send")),
        "another project's secret": (f"{SHOP}/sales", body, token(other_project)),
        "another instance's secret": (f"{SHOP}/sales", body, token(other_instance)),
        "wrong instance in body": (f"{SHOP}/sales", upsert("R-1", instance="shop--support"), token(secret)),
        "another project's name in body": (f"{SHOP}/sales", upsert("R-1", instance="web--sales"), token(secret)),
        "malformed json": (f"{SHOP}/sales", b'{"event": "messages.upsert", ', token(secret)),
        "unknown project": ("/hooks/evolution/acme/nosuch/sales", body, token(secret)),
        "project under another org": ("/hooks/evolution/globex/shop/sales", body, token(secret)),
        "unknown instance": (f"{SHOP}/nosuch", body, token(secret)),
        "suspended project": ("/hooks/evolution/acme/crm/sales", body, token(suspended)),
        "malformed path": ("/hooks/evolution/acme/Shop!/sales", body, token(secret)),
        "a newline after the ref": ("/hooks/evolution/acme/shop%0A/sales", body, token(secret)),
    }
    answers = {name: post(client, *case) for name, case in cases.items()}
    reference = answers["forged"]
    assert reference.status_code == 401
    for name, answer in answers.items():
        assert (answer.status_code, answer.content) == (401, reference.content), name
        assert answer.headers.get("www-authenticate") == "Bearer", name
    assert count(hooks_stage, "R-1") == 0
    logged = "\n".join(hooks_stage.logs.lines)
    for reason in ("expired", "issued in the future", "the body names another instance", "no such project"):
        assert reason in logged
    assert "secret words" not in logged
    assert all(case[2] is None or case[2] not in logged for case in cases.values())


def test_an_oversized_body_is_413(hooks_stage: PlatformStage, client: httpx.Client) -> None:
    secret = webhook_secret(hooks_stage, "shop", "sales")
    answer = post(client, f"{SHOP}/sales", upsert("BIG-1", text="x" * (64 * 1024)), token(secret))
    assert answer.status_code == 413
    assert count(hooks_stage, "BIG-1") == 0


def test_over_the_instances_rate_429_then_it_refills(hooks_stage: PlatformStage) -> None:
    settings = service_settings(hooks_stage.stage, hook_burst=2, hook_rate_per_s=5.0, **NO_FORWARDING)
    secret = webhook_secret(hooks_stage, "shop", "sales")
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as limited:
        statuses = [post(limited, f"{SHOP}/sales", upsert(f"L-{n}"), token(secret)).status_code for n in range(3)]
        assert statuses == [200, 200, 429]
        time.sleep(0.3)
        assert post(limited, f"{SHOP}/sales", upsert("L-2"), token(secret)).status_code == 200
    assert [count(hooks_stage, f"L-{n}") for n in range(3)] == [1, 1, 1]


def test_a_database_without_the_tables_is_503_and_an_unstorable_body_422(
    hooks_stage: PlatformStage, client: httpx.Client
) -> None:
    """503: Evolution keeps the webhook and retries until an apply creates the tables; 422: no retry can help."""
    blog = webhook_secret(hooks_stage, "blog", "main")
    answer = post(client, "/hooks/evolution/globex/blog/main", upsert("T-1", instance="blog--main"), token(blog))
    assert answer.status_code == 503, answer.text
    nul = upsert("NUL-1", text="a\u0000b")
    answer = post(client, f"{SHOP}/sales", nul, token(webhook_secret(hooks_stage, "shop", "sales")))
    assert answer.status_code == 422, answer.text
    assert count(hooks_stage, "NUL-1") == 0


def test_a_message_sent_as_evolution_sends_it_is_stored(hooks_stage: PlatformStage) -> None:
    """The Evolution stand-in (which sends webhooks as 2.3.7 does: envelope, HS256 bearer from the jwt_key
    header) delivers a message to the running service: 200, and the row is there."""
    key = "global-evolution-key-0123456789abcdef"
    evolution = EvolutionStandIn(key)
    secret = webhook_secret(hooks_stage, "shop", "sales")
    desired = DesiredInstance("acme", "shop", "sales", f"{hooks_stage.url}{SHOP}/sales", ("MESSAGES_UPSERT",),
                              "tok-0123456789", secret)  # fmt: skip
    created = json.dumps(desired.create_body()).encode()
    assert evolution.respond("POST", "/instance/create", {}, created, {"apikey": key})[0] == 201
    request = json.dumps({"event": "messages.upsert", "text": "from the stand-in"}).encode()
    status, answer = IMAGE.evolution_simulate(
        evolution.api, "POST", IMAGE.SIMULATE + "shop--sales", {"apikey": key}, request
    )
    assert status == 200 and answer["status"] == 200, answer
    assert shop(hooks_stage, "SELECT text FROM whatsapp.messages WHERE message_id = %s", (answer["message_id"],)) == [
        ("from the stand-in",)
    ]


def test_database_down_is_503_and_the_retry_stores_it_once_back(
    hooks_stage: PlatformStage, client: httpx.Client
) -> None:
    """Last in the module: it stops the server."""
    secret = webhook_secret(hooks_stage, "shop", "sales")
    assert post(client, f"{SHOP}/sales", upsert("D-0"), token(secret)).status_code == 200  # a live pool, cached secrets
    server = hooks_stage.stage.server
    server.stop()
    try:
        down = post(client, f"{SHOP}/sales", upsert("D-1"), token(secret))
        assert down.status_code == 503, down.text
        assert down.headers.get("retry-after")
    finally:
        server.start()
    retried = post(client, f"{SHOP}/sales", upsert("D-1"), token(secret))
    assert retried.status_code == 200 and retried.json() == {"stored": True}
    assert count(hooks_stage, "D-1") == 1
