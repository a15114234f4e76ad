"""CONTRACT tests of the Resend client against the Resend STAND-IN (devkit/standins/resend.py), which refuses what
Resend refuses: a missing or wrong key, an unverified from domain, a bad idempotency key; replays a key's first
answer for 24 h; answers 429 with retry-after on demand; delays an answer past the client's timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from devkit.standins.resend import IDEMPOTENCY_TTL_S, ResendStandin
from nextmavens.email.resend import Outgoing, ResendClient, ResendError

KEY = "re_standin_key_0123456789"
MAIL = Outgoing(sender="Shop <noreply@mail.shop.example>", to=("ann@x.example",), subject="Hi", text="Hello")


@pytest.fixture
def resend() -> Iterator[ResendStandin]:
    with ResendStandin(KEY, {"mail.shop.example"}) as standin:
        yield standin


def client(resend: ResendStandin, **kwargs: object) -> ResendClient:
    return ResendClient(api_key=str(kwargs.pop("api_key", KEY)), base_url=resend.base_url, **kwargs)  # type: ignore[arg-type]


def test_contract_a_send_returns_resends_id_and_the_body_resend_takes(resend: ResendStandin) -> None:
    reply = Outgoing(
        sender=MAIL.sender, to=MAIL.to, subject="Hi", html="<p>Hi</p>", reply_to="o@shop.example", tags=(("a", "b"),)
    )
    provider_id = client(resend).send(reply, "shop/k1")
    [sent] = resend.state.sent
    assert sent.id == provider_id and sent.idempotency_key == "shop/k1"
    assert sent.body == {
        "from": "Shop <noreply@mail.shop.example>",
        "to": ["ann@x.example"],
        "subject": "Hi",
        "html": "<p>Hi</p>",
        "reply_to": "o@shop.example",
        "tags": [{"name": "a", "value": "b"}],
    }


def test_contract_the_same_key_twice_sends_once_and_answers_the_first_id(resend: ResendStandin) -> None:
    first = client(resend).send(MAIL, "shop/k1")
    assert client(resend).send(MAIL, "shop/k1") == first
    assert len(resend.state.sent) == 1


def test_contract_a_key_expires_after_24_hours(resend: ResendStandin) -> None:
    client(resend).send(MAIL, "shop/k1")
    resend.state.clock_offset = IDEMPOTENCY_TTL_S + 1
    client(resend).send(MAIL, "shop/k1")
    assert len(resend.state.sent) == 2


def test_contract_the_same_key_with_another_payload_is_refused(resend: ResendStandin) -> None:
    client(resend).send(MAIL, "shop/k1")
    with pytest.raises(ResendError) as caught:
        client(resend).send(Outgoing(MAIL.sender, MAIL.to, "Other", text="x"), "shop/k1")
    assert (caught.value.status, caught.value.name, caught.value.permanent) == (409, "invalid_idempotent_request", True)


@pytest.mark.parametrize(
    ("api_key", "sender", "status", "name"),
    [
        ("", MAIL.sender, 401, "missing_api_key"),
        ("re_wrong", MAIL.sender, 401, "validation_error"),
        (KEY, "Shop <noreply@shop.example>", 403, "validation_error"),
        (KEY, "not an address", 422, "validation_error"),
    ],
)
def test_contract_refusals_are_not_retried_and_name_no_key(
    resend: ResendStandin, api_key: str, sender: str, status: int, name: str
) -> None:
    with pytest.raises(ResendError) as caught:
        client(resend, api_key=api_key).send(Outgoing(sender, MAIL.to, "Hi", text="x"), "shop/k1")
    assert (caught.value.status, caught.value.name) == (status, name)
    assert resend.state.requests == 1 and not resend.state.sent
    assert KEY not in str(caught.value) and "re_wrong" not in str(caught.value)


@pytest.mark.parametrize("tag", [("project", "shop.example"), ("a b", "x"), ("", "x"), ("t", "x" * 257)])
def test_contract_a_tag_outside_resends_characters_is_refused(resend: ResendStandin, tag: tuple[str, str]) -> None:
    with pytest.raises(ResendError) as caught:
        client(resend).send(Outgoing(MAIL.sender, MAIL.to, "Hi", text="x", tags=(tag,)), "shop/k1")
    assert (caught.value.status, caught.value.name, caught.value.permanent) == (422, "validation_error", True)
    assert not resend.state.sent


def test_contract_an_idempotency_key_over_256_characters_is_refused_before_sending(resend: ResendStandin) -> None:
    with pytest.raises(ValueError, match="1-256"):
        client(resend).send(MAIL, "k" * 257)
    assert resend.state.requests == 0


def test_contract_429_waits_for_retry_after_then_sends_once(resend: ResendStandin) -> None:
    resend.state.fail_429_next, resend.state.retry_after_s = 2, 1
    waits: list[float] = []
    started = time.monotonic()
    provider_id = client(resend, sleep=lambda s: (waits.append(s), time.sleep(s))).send(MAIL, "shop/k1")
    assert time.monotonic() - started >= 2.0
    assert resend.state.statuses == [429, 429, 200]
    assert [s.id for s in resend.state.sent] == [provider_id]
    assert all(w >= 0.9 for w in waits)


def test_contract_the_rate_limit_headers_pace_the_next_request(resend: ResendStandin) -> None:
    resend.state.rate_per_s = 2
    c = client(resend)
    for n in range(6):
        c.send(MAIL, f"shop/k{n}")
    assert 429 not in resend.state.statuses and len(resend.state.sent) == 6


def test_contract_a_send_retried_after_a_timeout_is_not_duplicated(resend: ResendStandin) -> None:
    resend.state.delay_next_sends, resend.state.delay_s = 1, 2.5
    provider_id = client(resend, timeout_s=1.0).send(MAIL, "shop/k1")
    time.sleep(1.0)  # the delayed first answer has come and gone
    assert [s.id for s in resend.state.sent] == [provider_id]
    assert resend.state.requests >= 2  # it was sent again, and answered with the first send's id


def test_contract_concurrent_sends_with_one_key_send_once(resend: ResendStandin) -> None:
    resend.state.delay_next_sends, resend.state.delay_s = 1, 0.5
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(client(resend).send(MAIL, "shop/k1"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(answers) == 4 and len(set(answers)) == 1 and len(resend.state.sent) == 1


def test_contract_gives_up_within_its_deadline_when_resend_is_gone() -> None:
    nap = lambda s: time.sleep(min(s, 0.2))  # noqa: E731
    c = ResendClient(api_key=KEY, base_url="http://127.0.0.1:9", deadline_s=2.0, sleep=nap)
    started = time.monotonic()
    with pytest.raises(ResendError, match="did not answer") as caught:
        c.send(MAIL, "shop/k1")
    assert caught.value.status is None and time.monotonic() - started < 10
