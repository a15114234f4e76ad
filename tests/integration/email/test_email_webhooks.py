"""POST /hooks/resend through the real service into the project's real database: Resend's reports signed the way
Svix signs (by the Resend STAND-IN's signer) move a sent message's status forward; forged, replayed and stale
webhooks are refused or change nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devkit.standins.resend import new_signing_secret, svix_headers
from tests.integration.email.conftest import EmailStage
from tests.integration.platform.harness import bearer


@pytest.fixture(scope="module")
def client(email_stage: EmailStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=email_stage.url, timeout=60) as session:
        yield session


def sent_message(stage: EmailStage, client: httpx.Client) -> dict[str, Any]:
    answer = client.post(
        "/v1/projects/acme/shop/email",
        json={"to": ["ann@x.example"], "subject": "s", "text": "t"},
        headers=bearer(stage.platform, "dev@acme.test"),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def report(kind: str, provider_id: str, sender: str = "Acme Shop <noreply@mail.shop.example>") -> bytes:
    data = {"email_id": provider_id, "from": sender, "to": ["ann@x.example"], "subject": "s"}
    return json.dumps({"type": kind, "created_at": "2026-12-02T14:00:00Z", "data": data}).encode()


def post(
    client: httpx.Client, secret: str, body: bytes, msg_id: str | None = None, at: float | None = None
) -> httpx.Response:
    headers = svix_headers(secret, msg_id or f"msg_{uuid.uuid4().hex}", body, at)
    return client.post("/hooks/resend", content=body, headers={**headers, "content-type": "application/json"})


def status_of(stage: EmailStage, row_id: int) -> str:
    return str(stage.stage.sql("SELECT status FROM email.messages WHERE id = %s", (row_id,), dbname="shop")[0][0])


def test_reports_move_the_status_forward_only(email_stage: EmailStage, client: httpx.Client) -> None:
    sent = sent_message(email_stage, client)
    secret = email_stage.webhook_secret
    assert post(client, secret, report("email.delivered", sent["provider_id"])).json() == {"stored": True}
    assert status_of(email_stage, sent["id"]) == "delivered"
    assert post(client, secret, report("email.sent", sent["provider_id"])).json() == {"stored": True}
    assert status_of(email_stage, sent["id"]) == "delivered"  # a late `sent` never undoes `delivered`
    assert post(client, secret, report("email.complained", sent["provider_id"])).status_code == 200
    assert status_of(email_stage, sent["id"]) == "complained"
    events = email_stage.stage.sql(
        "SELECT type FROM email.events WHERE provider_id = %s ORDER BY id", (sent["provider_id"],), dbname="shop"
    )
    assert [t for (t,) in events] == ["email.delivered", "email.sent", "email.complained"]


def test_a_bounce_is_recorded(email_stage: EmailStage, client: httpx.Client) -> None:
    sent = sent_message(email_stage, client)
    assert post(client, email_stage.webhook_secret, report("email.bounced", sent["provider_id"])).status_code == 200
    assert status_of(email_stage, sent["id"]) == "bounced"


def test_a_replayed_webhook_is_stored_once_and_changes_nothing(email_stage: EmailStage, client: httpx.Client) -> None:
    sent = sent_message(email_stage, client)
    body = report("email.delivered", sent["provider_id"])
    assert post(client, email_stage.webhook_secret, body, "msg_replay_1").json() == {"stored": True}
    assert post(client, email_stage.webhook_secret, body, "msg_replay_1").json() == {"stored": False}
    count = "SELECT count(*) FROM email.events WHERE svix_id = 'msg_replay_1'"
    assert email_stage.stage.sql(count, dbname="shop") == [(1,)]


def test_forged_and_stale_webhooks_are_refused(email_stage: EmailStage, client: httpx.Client) -> None:
    sent = sent_message(email_stage, client)
    body = report("email.bounced", sent["provider_id"])
    forged = post(client, new_signing_secret(), body)
    stale = post(client, email_stage.webhook_secret, body, at=time.time() - 6 * 60)
    future = post(client, email_stage.webhook_secret, body, at=time.time() + 6 * 60)
    headers = svix_headers(email_stage.webhook_secret, "msg_altered", body)
    altered = client.post("/hooks/resend", content=body.replace(b"bounced", b"delivered"), headers=headers)
    unsigned = client.post("/hooks/resend", content=body)
    for answer in (forged, stale, future, altered, unsigned):
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthenticated"
    assert status_of(email_stage, sent["id"]) == "sent"
    assert not any(email_stage.webhook_secret in line for line in email_stage.platform.logs.lines)


def test_a_report_for_no_projects_domain_is_acknowledged_and_not_stored(
    email_stage: EmailStage, client: httpx.Client
) -> None:
    answer = post(client, email_stage.webhook_secret, report("email.delivered", "x", "a@elsewhere.example"))
    assert answer.json() == {"stored": False}
    # globex/web's domain goes to web's database, never shop's
    answer = post(client, email_stage.webhook_secret, report("email.delivered", "web-1", "Globex <n@web.example>"))
    assert answer.json() == {"stored": True}
    count = "SELECT count(*) FROM email.events WHERE provider_id = 'web-1'"
    assert email_stage.stage.sql(count, dbname="web") == [(1,)]
    assert email_stage.stage.sql(count, dbname="shop") == [(0,)]
