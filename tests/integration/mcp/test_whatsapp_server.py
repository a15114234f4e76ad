"""`nextmavens mcp whatsapp` as a real subprocess through the SDK's stdio client, against a real platform service
and the Evolution STAND-IN it is given: the tools per token, sending with the connection's per-minute limit, and
a send whose outcome is unknown reported as UNCERTAIN rather than as something to retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from nextmavens.mcp.whatsapp import TOOLS_READ_ONLY, TOOLS_WRITE
from tests.integration.mcp.conftest import PYTHON, server_argv, server_env
from tests.integration.platform.harness import PlatformStage, running_service
from tests.support.ports import free_port

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def session(
    url: str, token: str, tmp_path: Path, *args: str, mode: str = "auto"
) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=PYTHON,
        args=server_argv("whatsapp", "--project", "acme/shop", *args),
        env=server_env(url, token, tmp_path / "config"),
    )
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:  # type: ignore[arg-type]
        yield client


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "text", None) is not None)


@pytest.mark.parametrize(
    ("member", "args", "expected"),
    [
        ("admin@acme.test", (), TOOLS_WRITE),
        ("admin@acme.test", ("--read-only",), TOOLS_READ_ONLY),
        ("dev@acme.test", (), TOOLS_READ_ONLY),
    ],
)
async def test_the_listed_tools_are_exactly_the_allowed_ones(
    platform_stage: PlatformStage, tmp_path: Path, member: str, args: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    token = platform_stage.issue(member)[1]
    async with session(platform_stage.url, token, tmp_path, *args, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert sorted(tools) == sorted(expected)
        if "send_message" in tools:
            hints = tools["send_message"].annotations
            assert hints is not None and hints.destructive_hint is True and hints.open_world_hint is True
        status = text_of(await client.call_tool("get_status", {"instance": "orders"}))
        assert '"state": "open"' in status


async def test_send_goes_through_and_the_connection_limit_holds(platform_stage: PlatformStage, tmp_path: Path) -> None:
    evolution = platform_stage.evolution
    assert evolution is not None
    token = platform_stage.issue("admin@acme.test")[1]
    before = len(evolution.api.sent)
    message = {"instance": "orders", "number": "5511900003333", "text": "Your order shipped"}
    async with session(platform_stage.url, token, tmp_path, "--sends-per-minute", "1") as client:
        sent = await client.call_tool("send_message", message)
        assert not sent.is_error and '"sent": true' in text_of(sent)
        limited = await client.call_tool("send_message", message)
        assert limited.is_error and "nothing was sent" in text_of(limited)
        listed = text_of(await client.call_tool("list_instances", {}))
    assert len(evolution.api.sent) == before + 1
    assert "orders" in listed and token not in listed


async def test_a_send_whose_outcome_is_unknown_is_reported_uncertain(
    platform_stage: PlatformStage, tmp_path: Path
) -> None:
    token = platform_stage.issue("admin@acme.test")[1]
    nowhere = f"http://127.0.0.1:{free_port()}"  # Evolution does not answer: the service answers 502
    with running_service(platform_stage.settings(evolution_url=nowhere)) as url:
        async with session(url, token, tmp_path) as client:
            result = await client.call_tool(
                "send_message", {"instance": "orders", "number": "5511900004444", "text": "hello"}
            )
    assert result.is_error
    assert "UNCERTAIN" in text_of(result) and "Do NOT send it again" in text_of(result)
