"""`nextmavens mcp email` as a real subprocess through the SDK's stdio client, against a real platform service, the
project's real database and the Resend STAND-IN (the email tests' stage): the tools per token and mode, a templated
send that lands once, no secret in any output, and a send whose outcome is unknown reported as UNCERTAIN."""

from __future__ import annotations

import http.client
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from nextmavens.mcp.email import TOOLS_READ_ONLY, TOOLS_WRITE
from tests.integration.email.conftest import RESEND_KEY, EmailStage
from tests.integration.email.conftest import email_stage as email_stage  # noqa: F401 - the module's stage
from tests.integration.email.test_email_send import keys_of
from tests.integration.mcp.conftest import PYTHON, server_argv, server_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def session(url: str, token: str, tmp_path: Path, *args: str, mode: str = "auto") -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=PYTHON,
        args=server_argv("email", "--project", "acme/shop", *args),
        env=server_env(url, token, tmp_path / "config"),
    )
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:  # type: ignore[arg-type]
        yield client


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "text", None) is not None)


def no_secret_in(stage: EmailStage, token: str, *outputs: str) -> None:
    anon, service_role = keys_of(stage, "shop")
    for output in outputs:
        for secret in (RESEND_KEY, service_role, token):
            assert secret not in output


WELCOME = {"to": ["ann@x.example"], "subject": "Welcome", "template": "welcome", "data": {"name": "Ann", "shop": "S"}}


@pytest.mark.parametrize(
    ("member", "scope", "args", "expected"),
    [
        ("admin@acme.test", {}, (), TOOLS_WRITE),
        ("dev@acme.test", {}, (), TOOLS_WRITE),  # email.send: a writing token of a developer or above
        ("admin@acme.test", {}, ("--read-only",), TOOLS_READ_ONLY),
        ("dev@acme.test", {"read_only": True}, (), TOOLS_READ_ONLY),
        ("admin@acme.test", {"read_only": True}, (), TOOLS_READ_ONLY),
    ],
)
async def test_the_listed_tools_are_exactly_the_allowed_ones(
    email_stage: EmailStage,  # noqa: F811
    tmp_path: Path,
    member: str,
    scope: dict[str, Any],
    args: tuple[str, ...],
    expected: tuple[str, ...],
) -> None:
    token = email_stage.platform.issue(member, **scope)[1]
    async with session(email_stage.url, token, tmp_path, *args, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert sorted(tools) == sorted(expected)
        reading = tools["list_templates"].annotations
        assert reading is not None and reading.read_only_hint is True and reading.destructive_hint is False
        if "send_email" in tools:
            hints = tools["send_email"].annotations
            assert hints is not None and hints.destructive_hint is True and hints.read_only_hint is False
        listed = text_of(await client.call_tool("list_templates", {}))
    assert "<untrusted-data-" in listed and '"name": "welcome"' in listed and '"name": "receipt"' in listed
    no_secret_in(email_stage, token, listed)


async def test_a_templated_send_lands_once(email_stage: EmailStage, tmp_path: Path) -> None:  # noqa: F811
    resend = email_stage.resend.state
    token = email_stage.platform.issue("dev@acme.test")[1]
    before = len(resend.sent)
    with_key = {**WELCOME, "idempotency_key": "mcp-test-welcome-ann"}
    async with session(email_stage.url, token, tmp_path) as client:
        first = await client.call_tool("send_email", with_key)
        again = await client.call_tool("send_email", with_key)
        fresh = await client.call_tool("send_email", {"to": ["bo@x.example"], "subject": "Hi", "text": "plain"})
    outputs = [text_of(r) for r in (first, again, fresh)]
    assert not any(r.is_error for r in (first, again, fresh)), outputs
    assert '"sent": true' in outputs[0] and '"replayed": false' in outputs[0]
    assert '"replayed": true' in outputs[1]
    assert len(resend.sent_with_key("shop/mcp-test-welcome-ann")) == 1
    assert resend.sent[before].body["text"] == "Hello Ann, welcome to S.\n"
    assert len(resend.sent) == before + 2  # the replay sent nothing
    generated = resend.sent[-1].idempotency_key
    assert generated is not None and generated.startswith("shop/mcp-") and generated.split("/", 1)[1] in outputs[2]
    rows = email_stage.rows(
        "SELECT template, status FROM email.messages WHERE idempotency_key = 'mcp-test-welcome-ann'"
    )
    assert rows == [("welcome", "sent")]
    no_secret_in(email_stage, token, *outputs)


async def test_a_sender_is_a_local_part_at_the_projects_domain_only(
    email_stage: EmailStage,  # noqa: F811
    tmp_path: Path,
) -> None:
    resend = email_stage.resend.state
    token = email_stage.platform.issue("dev@acme.test")[1]
    before = len(resend.sent)
    message = {"to": ["cy@x.example"], "subject": "Invoice", "text": "attached"}
    async with session(email_stage.url, token, tmp_path) as client:
        sent = await client.call_tool("send_email", {**message, "sender": "billing"})
        refused = {
            sender: await client.call_tool("send_email", {**message, "sender": sender})
            for sender in ("ceo@bank.example", "billing@mail.shop.example", "billing@evil.example", "Bad Name")
        }
    assert not sent.is_error, text_of(sent)
    assert resend.sent[before].body["from"] == "Acme Shop <billing@mail.shop.example>"
    for sender, result in refused.items():
        assert result.is_error, sender
    assert "never from 'bank.example'" in text_of(refused["ceo@bank.example"])
    assert "only the part before '@'" in text_of(refused["billing@mail.shop.example"])
    assert len(resend.sent) == before + 1  # the refused ones never left


async def test_the_connections_send_limit_holds(email_stage: EmailStage, tmp_path: Path) -> None:  # noqa: F811
    resend = email_stage.resend.state
    token = email_stage.platform.issue("admin@acme.test")[1]
    before = len(resend.sent)
    async with session(email_stage.url, token, tmp_path, "--sends-per-minute", "1") as client:
        sent = await client.call_tool("send_email", WELCOME)
        limited = await client.call_tool("send_email", WELCOME)
    assert not sent.is_error and '"sent": true' in text_of(sent)
    assert limited.is_error and "nothing was sent" in text_of(limited)
    assert len(resend.sent) == before + 1


async def test_a_read_only_token_cannot_send(email_stage: EmailStage, tmp_path: Path) -> None:  # noqa: F811
    resend = email_stage.resend.state
    before = len(resend.sent)
    token = email_stage.platform.issue("dev@acme.test", read_only=True)[1]
    async with session(email_stage.url, token, tmp_path) as client:
        refused = await client.call_tool("send_email", WELCOME)
    assert refused.is_error
    assert len(resend.sent) == before


class Swallower(BaseHTTPRequestHandler):
    """Passes GETs on to the service; takes a POST and hangs up without an answer (as a crash mid-request does)."""

    upstream = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        address = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
        try:
            conn.request("GET", self.path, headers={"Authorization": self.headers.get("Authorization", "")})
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True


@contextmanager
def swallowing_front(upstream: str) -> Iterator[str]:
    handler = type("Front", (Swallower,), {"upstream": upstream})
    front = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{front.server_address[1]}"
    finally:
        front.shutdown()
        front.server_close()
        thread.join(timeout=10)


async def test_a_send_whose_outcome_is_unknown_is_reported_uncertain(
    email_stage: EmailStage,  # noqa: F811
    tmp_path: Path,
) -> None:
    token = email_stage.platform.issue("admin@acme.test")[1]
    with swallowing_front(email_stage.url) as url:
        async with session(url, token, tmp_path) as client:
            result = await client.call_tool("send_email", {**WELCOME, "idempotency_key": "mcp-test-unknown"})
    text = text_of(result)
    assert result.is_error
    assert "UNCERTAIN" in text and "Do NOT send it again" in text and "mcp-test-unknown" in text
    assert "try again" not in text.lower() and "retry" not in text.lower()
    no_secret_in(email_stage, token, text)
