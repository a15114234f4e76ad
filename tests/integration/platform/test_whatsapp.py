"""The WhatsApp endpoints against a real service and database, with the Evolution STAND-IN (contract: 2.3.7's
connect, connectionState, fetchInstances, webhook/find and sendText) on loopback: listing without secrets,
pairing answers (QR text and PNG, pairing code, state), status, sending with its role, validation and rate
limit, and clear 503/502 answers when Evolution is not configured or not answering."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.platform.harness import (
    EVOLUTION_KEY,
    PAIRED_NUMBER,
    PlatformStage,
    bearer,
    running_service,
)
from tests.support.ports import free_port
from tests.support.standins import EvolutionStandIn

SHOP = "/v1/projects/acme/shop/whatsapp"


@pytest.fixture(scope="module")
def evolution(platform_stage: PlatformStage) -> EvolutionStandIn:
    assert platform_stage.evolution is not None
    return platform_stage.evolution


@pytest.fixture(scope="module")
def admin(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "admin@acme.test")


@pytest.fixture(scope="module")
def developer(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "dev@acme.test")


@pytest.fixture
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=30) as session:
        yield session


def test_the_list_shows_state_number_and_webhook_url_and_no_secret(
    client: httpx.Client, evolution: EvolutionStandIn, developer: dict[str, str]
) -> None:
    hook = {"url": "http://hooks.internal:8100/hooks/evolution/acme/shop/orders", "headers": {"jwt_key": "jwt-s3cret"}}
    evolution.instances["shop--orders"]["webhook"] = {**hook, "enabled": True, "events": ["MESSAGES_UPSERT"]}
    evolution.add_instance("crm--sales")  # another project's
    answer = client.get(SHOP, headers=developer)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "instances": [
            {
                "name": "orders",
                "evolution_name": "shop--orders",
                "state": "open",
                "number": PAIRED_NUMBER,
                "webhook_url": hook["url"],
            }
        ]
    }
    for secret in ("jwt-s3cret", evolution.instances["shop--orders"]["token"], EVOLUTION_KEY):
        assert secret not in answer.text


def test_status_names_the_paired_phone(client: httpx.Client, developer: dict[str, str]) -> None:
    answer = client.get(f"{SHOP}/orders/status", headers=developer)
    assert answer.json() == {"state": "open", "number": PAIRED_NUMBER, "profile_name": "Acme Shop"}
    missing = client.get(f"{SHOP}/billing/status", headers=developer)
    assert (
        missing.status_code == 404 and missing.json()["error"]["message"] == "no WhatsApp instance billing in acme/shop"
    )
    assert client.get(f"{SHOP}/Not_A_Name/status", headers=developer).status_code == 422


def test_connect_answers_no_code_then_qr_codes_then_a_pairing_code_then_open(
    client: httpx.Client, evolution: EvolutionStandIn, admin: dict[str, str], developer: dict[str, str]
) -> None:
    evolution.add_instance("shop--support")
    evolution.api.open_after = 3  # {count: 0}, two QR codes, then the phone has scanned
    url = f"{SHOP}/support/connect"
    first = client.post(url, headers=admin).json()
    assert first == {"code": None, "png_base64": None, "pairing_code": None, "state": "connecting"}
    second = client.post(url, headers=admin).json()
    third = client.post(url, headers=admin, json={"number": "4915112345678"}).json()
    assert second["state"] == "connecting" and second["code"].startswith("2@") and second["pairing_code"] is None
    assert third["code"] != second["code"] and len(third["pairing_code"]) == 8
    png = base64.b64decode(second["png_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.post(url, headers=admin, json={"number": "+49 151"}).status_code == 422
    assert client.post(url, headers=developer).status_code == 403
    opened = client.post(url, headers=admin).json()
    assert opened == {"code": None, "png_base64": None, "pairing_code": None, "state": "open"}
    status = client.get(f"{SHOP}/support/status", headers=admin).json()
    assert status["state"] == "open" and status["number"] == "15550001234"


def test_the_qr_limit_is_a_409_that_says_to_connect_again(
    client: httpx.Client, evolution: EvolutionStandIn, admin: dict[str, str]
) -> None:
    evolution.add_instance("shop--limited", state="refused")
    answer = client.post(f"{SHOP}/limited/connect", headers=admin)
    assert answer.status_code == 409 and "call connect again" in answer.json()["error"]["message"]


def test_send_returns_the_message_id_and_refuses_what_it_must(
    client: httpx.Client, evolution: EvolutionStandIn, admin: dict[str, str], developer: dict[str, str]
) -> None:
    url = f"{SHOP}/orders/messages"
    sent = client.post(url, headers=admin, json={"number": "5511900001111", "text": "Your order shipped"})
    assert sent.status_code == 201, sent.text
    assert evolution.api.sent[-1] == {
        "instance": "shop--orders", "number": "5511900001111", "text": "Your order shipped",
        "id": sent.json()["message_id"],
    }  # fmt: skip
    count = len(evolution.api.sent)
    for body in (
        {"number": "+5511900001111", "text": "x"},
        {"number": "5511900001111", "text": "   "},
        {"number": "5511900001111", "text": "x" * 4097},
        {"number": "5511900001111"},
    ):
        refused = client.post(url, headers=admin, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert "5511900001111" not in refused.text  # the input is not echoed
    assert client.post(url, headers=developer, json={"number": "5511900001111", "text": "x"}).status_code == 403
    evolution.add_instance("shop--idle")
    idle = client.post(f"{SHOP}/idle/messages", headers=admin, json={"number": "5511900001111", "text": "x"})
    assert idle.status_code == 409 and idle.json()["error"]["code"] == "not_connected"
    evolution.api.not_on_whatsapp.add("5511900002222")
    unknown = client.post(url, headers=admin, json={"number": "5511900002222", "text": "x"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "evolution_refused"
    assert '"exists": false' in unknown.json()["error"]["message"] and EVOLUTION_KEY not in unknown.text
    assert len(evolution.api.sent) == count


def test_sending_is_rate_limited_per_instance(
    platform_stage: PlatformStage, evolution: EvolutionStandIn, admin: dict[str, str]
) -> None:
    evolution.add_instance("shop--other", state="open", ownerJid="15550009999@s.whatsapp.net")
    settings = platform_stage.settings(whatsapp_send_burst=2, whatsapp_send_refill_s=60)
    body = {"number": "5511900001111", "text": "hello"}
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        statuses = [client.post(f"{SHOP}/orders/messages", headers=admin, json=body).status_code for _ in range(3)]
        limited = client.post(f"{SHOP}/orders/messages", headers=admin, json=body)
        other = client.post(f"{SHOP}/other/messages", headers=admin, json=body)
    assert statuses == [201, 201, 429]
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 60
    assert other.status_code == 201  # another instance has its own bucket
    audit = platform_stage.stage.sql(
        "SELECT result FROM audit_log WHERE action = 'whatsapp.send' ORDER BY id DESC LIMIT 2", dbname="nextmavens"
    )
    assert audit == [("ok",), ("rate_limited",)]


def test_without_evolution_settings_or_its_key_the_answer_is_503(
    platform_stage: PlatformStage, admin: dict[str, str], tmp_path: Path
) -> None:
    loose = tmp_path / "evolution.key"
    loose.write_text(EVOLUTION_KEY)
    loose.chmod(0o644)
    evolution_url = platform_stage.evolution_settings["evolution_url"]
    for overrides, says in (
        ({"evolution_url": None}, "NEXTMAVENS_EVOLUTION_URL"),
        ({"evolution_key_file": loose}, "cannot read Evolution's key"),
    ):
        with running_service(platform_stage.settings(**overrides)) as url:
            answer = httpx.get(f"{url}{SHOP}", headers=admin, timeout=30)
        assert answer.status_code == 503 and says in answer.json()["error"]["message"], answer.text
    assert evolution_url  # the module's service still names it
    assert not any(EVOLUTION_KEY in line for line in platform_stage.logs.lines)


def test_evolution_not_answering_is_a_502_without_its_address(
    platform_stage: PlatformStage, admin: dict[str, str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with running_service(platform_stage.settings(evolution_url=nowhere)) as url:
        answer = httpx.post(f"{url}{SHOP}/orders/connect", headers=admin, timeout=30)
    assert answer.status_code == 502 and answer.json()["error"] == {
        "code": "evolution_failed",
        "message": "Evolution failed: it did not answer",
    }
