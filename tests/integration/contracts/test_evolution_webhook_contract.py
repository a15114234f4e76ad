"""Contract: the Evolution stand-in sends webhooks as Evolution API 2.3.7 does (reference evolution.md section 2):
the envelope, `Authorization: Bearer <HS256 JWT>` signed with the instance's `jwt_key` header (which is not sent
itself), the JWT's claims, and the retries WEBHOOK_RETRY_* configure (5xx and 429 retried with the same token,
400/401/403/404/422 final). The JWT is checked here with hmac alone, not with the stand-in's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nextmavens.edge.whatsappinstances import DesiredInstance
from tests.support.loopback import QuietHandler, serving
from tests.support.standins import IMAGE, EvolutionStandIn

KEY = "global-evolution-key-0123456789abcdef"
JWT_KEY = "webhook-secret-0123456789abcdef0123456789"
PATH = "/hooks/evolution/acme/shop/orders"
FAST_RETRIES = {
    "WEBHOOK_REQUEST_TIMEOUT_MS": "2000",
    "WEBHOOK_RETRY_MAX_ATTEMPTS": "3",
    "WEBHOOK_RETRY_INITIAL_DELAY_SECONDS": "0.05",
    "WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF": "true",
    "WEBHOOK_RETRY_MAX_DELAY_SECONDS": "0.1",
    "WEBHOOK_RETRY_JITTER_FACTOR": "0.2",
    "WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES": "400,401,403,404,422",
    "SERVER_URL": "http://127.0.0.1:8080",
}


class Receiver:
    """Records every POST (path, headers, body) and answers with the next status of `statuses` (then the last)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = threading.Condition()

    def handler(self) -> type[QuietHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.seen.append((self.path, dict(self.headers.items()), raw))
                    status = receiver.statuses[min(len(receiver.seen), len(receiver.statuses)) - 1]
                    receiver.arrived.notify_all()
                self.reply_json(status, {"status": status})

        return Handler

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.seen) >= count, timeout), self.seen


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_claims(authorization: str, secret: str) -> dict[str, Any]:
    """The JWT's claims after checking its HS256 signature with `secret` (hmac here, independent of the stand-in)."""
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    head, payload, signature = token.split(".")
    assert json.loads(_b64(head)) == {"alg": "HS256", "typ": "JWT"}
    want = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(want, _b64(signature)), "signature does not verify with the instance's jwt_key"
    return json.loads(_b64(payload))  # type: ignore[no-any-return]


@pytest.fixture
def evolution() -> EvolutionStandIn:
    return EvolutionStandIn(KEY)


def _instance(standin: EvolutionStandIn, port: int, events: tuple[str, ...] = ("MESSAGES_UPSERT",)) -> str:
    desired = DesiredInstance("acme", "shop", "orders", f"http://127.0.0.1:{port}{PATH}", events, "tok-0123456789",
                              JWT_KEY)  # fmt: skip
    status, _ = standin.respond("POST", "/instance/create", {}, json.dumps(desired.create_body()).encode(),
                                {"apikey": KEY})  # fmt: skip
    assert status == 201
    return desired.evolution_name


def simulate(standin: EvolutionStandIn, name: str, body: dict[str, Any], key: str = KEY) -> tuple[int, Any]:
    path = IMAGE.SIMULATE + name
    return IMAGE.evolution_simulate(standin.api, "POST", path, {"apikey": key}, json.dumps(body).encode(),
                                    env=FAST_RETRIES)  # type: ignore[no-any-return]  # fmt: skip


@pytest.fixture
def received() -> Iterator[tuple[Receiver, int]]:
    receiver = Receiver([200])
    with serving(receiver.handler()) as port:
        yield receiver, port


def test_an_incoming_message_is_posted_with_2_3_7_s_envelope_and_a_jwt_signed_with_the_jwt_key(
    evolution, received
) -> None:
    receiver, port = received
    name = _instance(evolution, port)
    before = int(time.time())
    status, answer = simulate(evolution, name, {"event": "messages.upsert", "text": "hello from the test"})
    assert status == 200 and answer["sent"] is True and answer["status"] == 200 and answer["retrying"] is False
    receiver.wait_for(1)
    path, headers, raw = receiver.seen[0]
    assert path == PATH
    assert headers["Content-Type"] == "application/json"
    assert "jwt_key" not in {k.lower() for k in headers} and JWT_KEY not in json.dumps(headers)
    claims = verified_claims(headers["Authorization"], JWT_KEY)
    assert set(claims) == {"iat", "exp", "app", "action"}
    assert (claims["app"], claims["action"]) == ("evolution", "webhook")
    assert before <= claims["iat"] <= time.time() and claims["exp"] == claims["iat"] + 600
    body = json.loads(raw)
    assert set(body) == {"event", "instance", "data", "destination", "date_time", "server_url", "apikey"}  # no sender
    assert (body["event"], body["instance"], body["apikey"]) == ("messages.upsert", name, None)
    assert body["destination"] == f"http://127.0.0.1:{port}{PATH}" and body["server_url"] == "http://127.0.0.1:8080"
    assert body["date_time"].endswith("Z")
    data = body["data"]
    assert data["message"] == {"conversation": "hello from the test"} and data["messageType"] == "conversation"
    assert data["key"]["fromMe"] is False and data["key"]["id"] == answer["message_id"]
    assert data["key"]["remoteJid"].endswith("@s.whatsapp.net")
    assert data["instanceId"] == evolution.instances[name]["id"]
    assert isinstance(data["messageTimestamp"], int)
    # a token signed with another key does not verify
    with pytest.raises(AssertionError, match="does not verify"):
        verified_claims(headers["Authorization"], "another-key")


@pytest.mark.parametrize(("statuses", "tries"), [([500, 429, 200], 3), ([503], 3), ([401], 1), ([404], 1),
                                                 ([422], 1), ([400], 1), ([403], 1)])  # fmt: skip
def test_retries_follow_webhook_retry_settings_with_the_same_token(
    evolution, statuses: list[int], tries: int
) -> None:
    receiver = Receiver(statuses)
    with serving(receiver.handler()) as port:
        name = _instance(evolution, port)
        status, answer = simulate(evolution, name, {"event": "messages.upsert", "text": "retry me"})
        assert status == 200 and answer["status"] == statuses[0]
        assert answer["retrying"] is (tries > 1)
        receiver.wait_for(tries)
        time.sleep(0.5)  # longer than every remaining delay: no try beyond `tries`
    assert len(receiver.seen) == tries
    assert len({headers["Authorization"] for _, headers, _ in receiver.seen}) == 1  # minted once, reused
    assert len({raw for _, _, raw in receiver.seen}) == 1


def test_the_delays_grow_exponentially_within_the_cap_and_jitter() -> None:
    config = IMAGE.webhook_retry_config({"WEBHOOK_RETRY_INITIAL_DELAY_SECONDS": "5", "WEBHOOK_RETRY_MAX_DELAY_SECONDS":
                                         "120", "WEBHOOK_RETRY_JITTER_FACTOR": "0.2"})  # fmt: skip
    assert [IMAGE.webhook_delay(config, k, 0.5) for k in range(1, 7)] == [5, 10, 20, 40, 80, 120]
    assert IMAGE.webhook_delay(config, 3, 1.0) == pytest.approx(24) and IMAGE.webhook_delay(config, 3, 0.0) == 16
    assert config["attempts"] == 10 and config["timeout_s"] == 30  # 2.3.7's defaults when the stack sets none


def test_simulate_needs_the_global_key_an_instance_and_a_subscription(evolution, received) -> None:
    receiver, port = received
    name = _instance(evolution, port, events=("CONNECTION_UPDATE",))
    assert simulate(evolution, name, {"text": "x"}, key="tok-0123456789")[0] == 401  # an instance token is not enough
    assert simulate(evolution, "shop--nobody", {"text": "x"})[0] == 404
    status, answer = simulate(evolution, name, {"text": "x"})
    assert status == 200 and answer["sent"] is False  # not subscribed to messages.upsert: nothing sent
    assert receiver.seen == []
