"""Contract tests: the Evolution client (nextmavens/edge/clients/evolution.py) and the edge's WhatsApp step
against a STAND-IN of Evolution API 2.3.7's documented routes and quirks (the sandbox image's, served on
loopback): create with the global key only, names unique, `integration` required, the nested webhook body,
fetchInstances rows holding the token, connectionState, errors answered as HTTP 200 `{"error": true}`, and a
failed create whose name stays taken for a moment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nextmavens.edge.clients.evolution import CREATE_RETRY_DELAYS_S, EvolutionApi, EvolutionError
from nextmavens.edge.clients.http import request_json
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.whatsapp import converge_whatsapp
from nextmavens.edge.whatsappinstances import DesiredInstance
from nextmavens.manifest.models import ProjectManifest
from nextmavens.upstream.facts import pinned_evolution
from tests.support.edgesamples import secrets_for
from tests.support.standins import EvolutionStandIn, serve

KEY = "global-evolution-key-0123456789abcdef"
HOOKS = "http://host.docker.internal:8100"
TOKEN = "instance-token-secret-0123456789"
JWT_KEY = "webhook-secret-0123456789abcdef0123456789"


@pytest.fixture
def evolution() -> Iterator[tuple[EvolutionStandIn, str]]:
    standin = EvolutionStandIn(KEY)
    with serve(standin) as url:
        yield standin, url


def _api(url: str, sleeps: list[float] | None = None) -> EvolutionApi:
    return EvolutionApi(url, KEY, timeout=5, sleep=(sleeps.append if sleeps is not None else lambda _: None))


def _desired(ref: str = "shop", instance: str = "orders") -> DesiredInstance:
    return DesiredInstance(
        org="acme",
        ref=ref,
        instance=instance,
        webhook_url=f"{HOOKS}/hooks/evolution/acme/{ref}/{instance}",
        events=("MESSAGES_UPSERT", "CONNECTION_UPDATE"),
        token=TOKEN,
        webhook_secret=JWT_KEY,
    )


def _raw(url: str, method: str, path: str, body: Any = None, key: str = KEY) -> tuple[int, Any]:
    return request_json(method, url + path, body, headers={"apikey": key})


def test_contract_create_then_fetch_instances_holds_the_token_and_webhook_find_the_jwt_key(evolution) -> None:
    standin, url = evolution
    api, desired = _api(url), _desired()
    created = api.create(desired.create_body(), desired.secrets())
    assert created["hash"] == TOKEN and created["instance"]["status"] == "close"
    rows = api.fetch_instances()
    assert [(r["name"], r["token"], r["connectionStatus"]) for r in rows] == [("shop--orders", TOKEN, "close")]
    webhook = api.find_webhook("shop--orders")
    assert webhook is not None
    assert webhook["url"] == desired.webhook_url and webhook["headers"] == {"jwt_key": JWT_KEY}
    assert sorted(webhook["events"]) == ["CONNECTION_UPDATE", "MESSAGES_UPSERT"]
    assert (webhook["webhookByEvents"], webhook["webhookBase64"], webhook["enabled"]) == (False, False, True)
    assert api.find_settings("shop--orders") is not None
    assert api.connection_state("shop--orders") == "close"
    assert api.connection_state("shop--nothing") == "missing"


def test_contract_refusals_as_evolution_2_3_7_refuses(evolution) -> None:
    _standin, url = evolution
    body = _desired().create_body()
    assert _raw(url, "POST", "/instance/create", body, key="wrong")[0] == 401
    assert _raw(url, "POST", "/instance/create", {**body, "integration": "nope"})[0] == 400
    assert _raw(url, "POST", "/instance/create", {k: v for k, v in body.items() if k != "integration"})[0] == 400
    assert _raw(url, "POST", "/instance/create", body)[0] == 201
    status, answer = _raw(url, "POST", "/instance/create", body)
    assert status == 403 and "already in use" in answer["response"]["message"][0]
    # the instance's own token does not create; on its own routes it works
    assert _raw(url, "POST", "/instance/create", {**body, "instanceName": "x--y"}, key=TOKEN)[0] == 401
    assert _raw(url, "GET", "/webhook/find/shop--orders", key=TOKEN)[0] == 200
    # webhook/set: the nested body only, `events` required when enabled, events from the pinned list
    assert _raw(url, "POST", "/webhook/set/shop--orders", {"url": HOOKS, "enabled": True})[0] == 400
    hook = {"enabled": True, "url": HOOKS}
    assert _raw(url, "POST", "/webhook/set/shop--orders", {"webhook": hook})[0] == 500
    assert _raw(url, "POST", "/webhook/set/shop--orders", {"webhook": {**hook, "events": ["NOPE"]}})[0] == 400
    assert _raw(url, "GET", "/instance/connectionState/other--one")[0] == 404


def test_contract_errors_as_http_200_are_errors(evolution) -> None:
    _standin, url = evolution
    api, desired = _api(url), _desired()
    api.create(desired.create_body(), desired.secrets())
    assert _raw(url, "POST", "/instance/restart/shop--orders") == (200, {"error": True, "message": "[object Object]"})
    with pytest.raises(EvolutionError, match=r"restart/shop--orders answered 200: \[object Object\]"):
        api.restart("shop--orders")


def test_contract_a_failed_create_is_retried_with_backoff(evolution) -> None:
    standin, url = evolution
    standin.api.fail_creates = 1  # fails, and the name stays taken for the next attempt (async cleanup)
    sleeps: list[float] = []
    desired = _desired()
    _api(url, sleeps).create(desired.create_body(), desired.secrets())
    assert sleeps == list(CREATE_RETRY_DELAYS_S[:2])
    assert "shop--orders" in standin.instances


def test_contract_a_wrong_key_is_not_retried_and_no_secret_reaches_the_error(evolution) -> None:
    _standin, url = evolution
    sleeps: list[float] = []
    api = EvolutionApi(url, "wrong-key-0123456789", sleep=sleeps.append)
    desired = _desired()
    with pytest.raises(EvolutionError) as caught:
        api.create(desired.create_body(), desired.secrets())
    assert caught.value.status == 401 and sleeps == []
    assert TOKEN not in str(caught.value) and JWT_KEY not in str(caught.value)


def _project(ref: str, instances: list[dict[str, Any]], state: str = "active") -> ProjectManifest:
    return ProjectManifest.model_validate(
        {"ref": ref, "name": ref, "state": state, "auth": {"site_url": f"https://{ref}.example"},
         "whatsapp": {"instances": instances}}
    )  # fmt: skip


def _edge_project(manifest: ProjectManifest, secrets: dict[str, tuple[str, str]]) -> EdgeProject:
    return EdgeProject(manifest, secrets_for(manifest.ref), "acme", secrets)


def test_contract_the_edge_step_creates_then_changes_nothing_then_repairs_drift_and_shows_orphans(evolution) -> None:
    standin, url = evolution
    api = _api(url)
    manifest = _project("shop", [{"name": "orders"}, {"name": "support", "events": ["MESSAGES_UPSERT"]}])
    secrets = {"orders": (TOKEN, JWT_KEY), "support": ("support-token-0123456789", "support-jwt-0123456789abcdef")}
    project = _edge_project(manifest, secrets)
    first = converge_whatsapp(api, HOOKS, [project])
    assert first.errors == [] and first.done == [
        "shop: whatsapp instance shop--orders: create (token, webhook, settings)",
        "shop: whatsapp instance shop--support: create (token, webhook, settings)",
    ]
    writes = len(standin.writes())
    second = converge_whatsapp(api, HOOKS, [project])
    assert second.done == [
        "shop: whatsapp instance shop--orders unchanged",
        "shop: whatsapp instance shop--support unchanged",
    ]
    assert len(standin.writes()) == writes  # read first, wrote nothing
    # drift: someone set the webhook by hand (an upsert: it drops what the body leaves out); only it is written back
    _raw(url, "POST", "/webhook/set/shop--orders", {"webhook": {"enabled": True, "url": "http://else:1", "events": []}})
    third = converge_whatsapp(api, HOOKS, [project])
    assert (
        third.done[0]
        == "shop: whatsapp instance shop--orders: set webhook (url, events, webhook secret, byEvents, base64)"
    )
    assert third.done[1:] == ["shop: whatsapp instance shop--support unchanged"]
    assert standin.instances["shop--orders"]["webhook"]["url"].endswith("/hooks/evolution/acme/shop/orders")
    # removed from the manifest: left alone, shown as an orphan
    fewer = _edge_project(_project("shop", [{"name": "orders"}]), secrets)
    fourth = converge_whatsapp(api, HOOKS, [fewer])
    assert "shop--support" in standin.instances
    assert [w for w in fourth.warnings if "shop--support is no longer declared" in w]
    for line in first.done + second.done + third.done + fourth.done + fourth.warnings:
        assert TOKEN not in line and JWT_KEY not in line


def test_contract_an_instance_made_outside_apply_is_never_overwritten(evolution) -> None:
    standin, url = evolution
    body = {**_desired().create_body(), "token": "someone-elses-token"}
    assert _raw(url, "POST", "/instance/create", body)[0] == 201
    report = converge_whatsapp(
        _api(url), HOOKS, [_edge_project(_project("shop", [{"name": "orders"}]), {"orders": (TOKEN, JWT_KEY)})]
    )
    assert report.errors and "another token" in report.errors[0]
    assert standin.instances["shop--orders"]["token"] == "someone-elses-token"


def test_contract_stand_in_reads_the_pinned_facts() -> None:
    facts = pinned_evolution()
    assert facts.routes["create"] == ("POST", "/instance/create")
    assert EvolutionStandIn(KEY).api.facts is facts


def test_stand_in_instances_outlive_a_restart_with_a_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "evolution.json")
    with serve(EvolutionStandIn(KEY, state_file=state)) as url:
        _api(url).create(_desired().create_body(), _desired().secrets())
    assert EvolutionStandIn(KEY, state_file=state).instances["shop--orders"]["token"] == TOKEN


def _created(url: str, name: str = "shop--orders") -> EvolutionApi:
    api, desired = _api(url), _desired()
    api.create(desired.create_body(), desired.secrets())
    return api


def test_contract_connect_answers_count_0_first_then_changing_qr_codes_then_open(evolution) -> None:
    standin, url = evolution
    standin.api.open_after = 3
    api = _created(url)
    assert api.connect("shop--orders") == {"count": 0}  # the socket starts: no QR yet
    assert api.connection_state("shop--orders") == "connecting"
    first, second = api.connect("shop--orders"), api.connect("shop--orders")
    assert first["code"] and second["code"] and first["code"] != second["code"]
    assert first["code"].startswith("2@") and first["pairingCode"] is None
    assert api.connect("shop--orders") == {"instance": {"instanceName": "shop--orders", "state": "open"}}
    assert api.connection_state("shop--orders") == "open"
    row = api.fetch_instance("shop--orders")
    assert row is not None and row["ownerJid"] == "15550001234@s.whatsapp.net" and row["profileName"]
    assert api.fetch_instance("shop--nothing") is None


def test_contract_connect_with_a_number_gives_an_8_character_pairing_code(evolution) -> None:
    standin, url = evolution
    standin.api.open_after = 0
    api = _created(url)
    api.connect("shop--orders", number="5511987654321")
    answer = api.connect("shop--orders", number="5511987654321")
    assert len(answer["pairingCode"]) == 8 and answer["pairingCode"].isalnum()
    assert ("GET", "/instance/connect/shop--orders") in standin.requests


def test_contract_the_qr_limit_is_refused_once_then_closed(evolution) -> None:
    standin, url = evolution
    standin.api.open_after, standin.api.refuse_after = 0, 2
    api = _created(url)
    for _ in range(3):
        api.connect("shop--orders")
    assert api.connection_state("shop--orders") == "refused"
    assert api.connection_state("shop--orders") == "close"  # 2.3.7 logs the session out and resets its count


def test_contract_send_text_needs_an_open_session_and_answers_the_message_id(evolution) -> None:
    standin, url = evolution
    standin.api.open_after = 1
    api = _created(url)
    with pytest.raises(EvolutionError, match="answered 500: Error: Connection Closed"):
        api.send_text("shop--orders", "5511987654321", "hello")
    api.connect("shop--orders")
    api.connect("shop--orders")
    message_id = api.send_text("shop--orders", "5511987654321", "hello")
    assert standin.api.sent == [
        {"instance": "shop--orders", "number": "5511987654321", "text": "hello", "id": message_id}
    ]
    # what 2.3.7 refuses: a body without number or text, a blank text, a number not on WhatsApp
    send = "/message/sendText/shop--orders"
    assert _raw(url, "POST", send, {"text": "hi"})[0] == 400
    assert _raw(url, "POST", send, {"number": "5511987654321"})[0] == 400
    assert _raw(url, "POST", send, {"number": "5511987654321", "text": "  "})[0] == 400
    standin.api.not_on_whatsapp.add("5511000000000")
    with pytest.raises(EvolutionError, match=r"answered 400: .*\"exists\": false") as caught:
        api.send_text("shop--orders", "5511000000000", "hi")
    assert KEY not in str(caught.value)
    assert _raw(url, "POST", "/message/sendText/other--one", {"number": "1", "text": "x"})[0] == 404
