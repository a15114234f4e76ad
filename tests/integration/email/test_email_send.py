"""POST /v1/projects/{org}/{ref}/email through the real service, the project's real database and the Resend
STAND-IN: templated sends recorded in email.messages, idempotent, authorized by a platform token or the project's
own service_role key only, templates rendered in a sandbox with HTML escaped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.email.conftest import EmailStage
from tests.integration.platform.harness import bearer


@pytest.fixture(scope="module")
def client(email_stage: EmailStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=email_stage.url, timeout=60) as session:
        yield session


def keys_of(stage: EmailStage, ref: str) -> tuple[str, str]:
    with stage.stage.engine().secrets() as store:
        secrets = store.project_secrets(ref)
    assert secrets is not None
    return secrets.keys.anon, secrets.keys.service_role


WELCOME = {
    "to": ["ann@x.example"],
    "subject": "Welcome",
    "template": "welcome",
    "data": {"name": "<b>Ann</b>", "shop": "A&B"},
}
SHOP = "/v1/projects/acme/shop/email"


def dev(stage: EmailStage) -> dict[str, str]:
    return bearer(stage.platform, "dev@acme.test")


def test_a_templated_send_is_rendered_escaped_sent_and_recorded(email_stage: EmailStage, client: httpx.Client) -> None:
    before = len(email_stage.resend.state.sent)
    answer = client.post(SHOP, json=WELCOME, headers=dev(email_stage))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "sent" and body["replayed"] is False
    sent = email_stage.resend.state.sent[before:]
    assert [s.id for s in sent] == [body["provider_id"]]
    mail = sent[0].body
    assert mail["from"] == "Acme Shop <noreply@mail.shop.example>" and mail["reply_to"] == "care@shop.example"
    assert mail["html"] == "<p>Hello &lt;b&gt;Ann&lt;/b&gt;, welcome to A&amp;B.</p>\n"
    assert mail["text"] == "Hello <b>Ann</b>, welcome to A&B.\n"
    assert sent[0].idempotency_key == f"shop/{body['idempotency_key']}"
    row = email_stage.stage.sql(
        "SELECT to_addresses, subject, template, status, provider_id FROM email.messages WHERE id = %s",
        (body["id"],),
        dbname="shop",
    )
    assert row == [(["ann@x.example"], "Welcome", "welcome", "sent", body["provider_id"])]


def test_the_same_idempotency_key_sends_once(email_stage: EmailStage, client: httpx.Client) -> None:
    headers = bearer(email_stage.platform, "dev@acme.test")
    request = {**WELCOME, "idempotency_key": "welcome-user/42"}
    first = client.post("/v1/projects/acme/shop/email", json=request, headers=headers)
    again = client.post("/v1/projects/acme/shop/email", json=request, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["replayed"] is True and again.json()["provider_id"] == first.json()["provider_id"]
    assert len(email_stage.resend.state.sent_with_key("shop/welcome-user/42")) == 1
    count = "SELECT count(*) FROM email.messages WHERE idempotency_key = 'welcome-user/42'"
    assert email_stage.rows(count) == [(1,)]


def test_the_projects_service_role_key_may_send_and_no_other_key(email_stage: EmailStage, client: httpx.Client) -> None:
    anon, service_role = keys_of(email_stage, "shop")
    _, web_service_role = keys_of(email_stage, "web")
    order = {"id": 7, "total": "9.90"}
    request = {"to": ["bob@x.example"], "subject": "Receipt", "template": "receipt", "data": {"order": order}}
    ok = client.post("/v1/projects/acme/shop/email", json=request, headers={"Authorization": f"Bearer {service_role}"})
    assert ok.status_code == 201, ok.text
    assert email_stage.resend.state.sent[-1].body["text"] == "Order 7: 9.90\n"
    audit = email_stage.stage.sql(
        "SELECT actor, result, detail::text FROM audit_log WHERE action = 'email.send' ORDER BY id DESC LIMIT 1",
        dbname="nextmavens",
    )
    assert audit[0][:2] == ("service_role@acme/shop", "ok") and "bob@" not in audit[0][2]
    forged = service_role[:-4] + ("AAAA" if not service_role.endswith("AAAA") else "BBBB")
    for key in (anon, web_service_role, forged, "a.b.c"):
        refused = client.post("/v1/projects/acme/shop/email", json=request, headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401, key
        assert refused.json()["error"]["code"] == "unauthenticated"
    # the key of web for web's own project is fine, and names no other project's existence
    assert client.post("/v1/projects/globex/web/email", json={"to": ["c@x.example"], "subject": "s", "text": "t"},
                       headers={"Authorization": f"Bearer {web_service_role}"}).status_code == 201
    assert client.post("/v1/projects/acme/nope/email", json=request,
                       headers={"Authorization": f"Bearer {service_role}"}).status_code == 401


def test_who_may_send_with_a_token(email_stage: EmailStage, client: httpx.Client) -> None:
    request = {"to": ["c@x.example"], "subject": "s", "text": "t"}
    other_org = client.post(SHOP, json=request, headers=bearer(email_stage.platform, "boss@globex.test"))
    assert other_org.status_code == 404
    read_only = bearer(email_stage.platform, "dev@acme.test", read_only=True)
    assert client.post("/v1/projects/acme/shop/email", json=request, headers=read_only).status_code == 403
    assert client.post("/v1/projects/acme/shop/email", json=request).status_code == 401
    assert client.post(SHOP, json={"to": []}).status_code == 401  # authentication before the body's validation
    no_email = client.post("/v1/projects/acme/crm/email", json=request, headers=dev(email_stage))
    assert no_email.status_code == 409 and no_email.json()["error"]["code"] == "email_not_declared"


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        ({"to": ["c@x.example"], "subject": "s", "template": "escape"}, 422, "sandbox"),
        ({"to": ["c@x.example"], "subject": "s", "template": "welcome"}, 422, "undefined"),
        ({"to": ["c@x.example"], "subject": "s", "template": "missing"}, 422, "no template missing"),
        ({"to": ["c@x.example"], "subject": "s"}, 422, "give a template"),
        ({"to": ["c@x.example"], "subject": "a\nBcc: x@y.example", "text": "t"}, 422, "one line"),
        ({"to": ["c@x.example, d@y.example"], "subject": "s", "text": "t"}, 422, "to[0]"),
        ({"to": ["c@x.example"], "subject": "s", "text": "t", "sender": "a b"}, 422, "sender"),
    ],
)
def test_bad_requests_send_nothing(
    email_stage: EmailStage, client: httpx.Client, request_body: dict[str, Any], status: int, words: str
) -> None:
    before = len(email_stage.resend.state.sent)
    answer = client.post(SHOP, json=request_body, headers=dev(email_stage))
    assert answer.status_code == status and words in answer.json()["error"]["message"], answer.text
    assert len(email_stage.resend.state.sent) == before


def test_a_template_link_is_refused(email_stage: EmailStage, client: httpx.Client) -> None:
    folder = email_stage.stage.projects / "acme" / "templates"
    os.symlink(email_stage.stage.master_key, folder / "leak.txt")
    try:
        answer = client.post(
            "/v1/projects/acme/shop/email",
            json={"to": ["c@x.example"], "subject": "s", "template": "leak"},
            headers=bearer(email_stage.platform, "dev@acme.test"),
        )
        assert answer.status_code == 422 and "not a plain file" in answer.json()["error"]["message"]
        listed = client.get(SHOP + "/templates", headers=dev(email_stage))
        assert "leak" not in {t["name"] for t in listed.json()["templates"]}
    finally:
        (folder / "leak.txt").unlink()


def test_list_templates(email_stage: EmailStage, client: httpx.Client) -> None:
    answer = client.get(SHOP + "/templates", headers=dev(email_stage))
    assert answer.status_code == 200
    assert answer.json()["templates"] == [
        {"name": "escape", "html": True, "text": False},
        {"name": "receipt", "html": False, "text": True},
        {"name": "welcome", "html": True, "text": True},
    ]


def test_resend_rate_limited_then_sent_once(email_stage: EmailStage, client: httpx.Client) -> None:
    email_stage.resend.state.fail_429_next, email_stage.resend.state.retry_after_s = 2, 1
    started = time.monotonic()
    answer = client.post(SHOP, json={**WELCOME, "idempotency_key": "rl-1"}, headers=dev(email_stage))
    assert answer.status_code == 201 and time.monotonic() - started >= 2
    assert len(email_stage.resend.state.sent_with_key("shop/rl-1")) == 1


def test_a_projects_send_budget_refuses_with_429_and_retry_after(email_stage: EmailStage, client: httpx.Client) -> None:
    """globex/web declares send_per_minute: 2. Past its burst a send is refused before anything is recorded or sent,
    with the seconds until the next one; acme/shop's budget is its own."""
    headers = bearer(email_stage.platform, "boss@globex.test")
    answers = []
    for n in range(3):
        request = {"to": ["c@x.example"], "subject": "s", "text": "t", "idempotency_key": f"budget-{n}"}
        answers.append(client.post("/v1/projects/globex/web/email", json=request, headers=headers))
        if answers[-1].status_code == 429:
            break
    refused = answers[-1]
    assert refused.status_code == 429, [a.status_code for a in answers]
    assert all(a.status_code == 201 for a in answers[:-1])
    assert refused.json()["error"]["code"] == "rate_limited" and 1 <= int(refused.headers["retry-after"]) <= 30
    last = f"budget-{len(answers) - 1}"
    assert email_stage.resend.state.sent_with_key(f"web/{last}") == []
    count = "SELECT count(*) FROM email.messages WHERE idempotency_key = %s"
    assert email_stage.stage.sql(count, (last,), dbname="web") == [(0,)]
    # the budget is charged before the template is rendered: a spent budget answers 429, not the template's 422
    templated = {"to": ["c@x.example"], "subject": "s", "template": "no-such-template"}
    answer = client.post("/v1/projects/globex/web/email", json=templated, headers=headers)
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "rate_limited"
    assert client.post(SHOP, json=WELCOME, headers=dev(email_stage)).status_code == 201  # another project's budget
