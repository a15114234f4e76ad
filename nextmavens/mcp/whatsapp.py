"""The WhatsApp MCP server for one project: its instances, their state, pairing (the QR code) and sending, through
the platform service as the caller's token.

get_qr and send_message are listed only for tokens that may use them (admins and owners, writing token, and not
--read-only). A connection sends at most `sends_per_minute` messages. A send that failed after the request left
(no answer, a broken answer, Evolution not answering) is reported as UNCERTAIN: the message may have gone, and a
retry may send it twice, so the model is told to check with the user instead of retrying.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from nextmavens.mcp.common import PerMinute, Target, as_text, call, left_the_client, tool_error
from nextmavens.platform.authz import Action
from nextmavens.remote.api import RemoteError

INSTANCE = Field(description="The instance's name as the project's manifest declares it", pattern=r"^[a-z0-9-]{1,40}$")
NUMBER = Field(description="The recipient's number: digits only, country code first (E.164 without +)")
SENDS_PER_MINUTE = 10


def uncertain(instance: str, number: str, exc: RemoteError) -> ToolError:
    return ToolError(
        f"UNCERTAIN: the message to {number} through {instance} may or may not have been sent ({exc.message}). "
        "Do NOT send it again: ask the user to check the chat on the phone first, since a retry may deliver it twice."
    )


def build_server(target: Target, read_only: bool, sends_per_minute: int = SENDS_PER_MINUTE) -> MCPServer:
    server = MCPServer(
        name="nextmavens-whatsapp",
        instructions=(
            f"WhatsApp of the NextMavens project {target.project}. Sending reaches real people: send only what the "
            "user asked for, to whom they asked."
        ),
    )
    limit = PerMinute(sends_per_minute)
    read = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    def list_instances() -> str:
        """The project's WhatsApp instances: name, state (open = paired), paired number."""
        found = call(target, "GET", target.path("whatsapp"))["instances"]
        return as_text([{key: i[key] for key in ("name", "state", "number")} for i in found])

    def get_status(instance: Annotated[str, INSTANCE]) -> str:
        """One instance's state (open, connecting, close), paired number and WhatsApp profile name."""
        return as_text(call(target, "GET", target.path("whatsapp", instance, "status")))

    def get_qr(instance: Annotated[str, INSTANCE]) -> str:
        """Start or continue pairing a phone with the instance: the QR code's text to show the user (scan it in
        WhatsApp, Linked devices). Null until Evolution has one: call again after 2-3 s, until the state is open."""
        answer = call(target, "POST", target.path("whatsapp", instance, "connect"), {})
        return as_text({"state": answer["state"], "qr_code_text": answer["code"]})

    def send_message(
        instance: Annotated[str, INSTANCE],
        number: Annotated[str, NUMBER],
        text: Annotated[str, Field(description="The message, at most 4096 characters")],
    ) -> str:
        """Send a WhatsApp text message to a real person through a paired instance. Only when the user asked for
        this exact message and recipient."""
        limit.admit("messages")
        try:
            answer = target.client.post(
                target.path("whatsapp", instance, "messages"), {"number": number, "text": text}
            )
        except RemoteError as exc:
            if left_the_client(exc):
                raise uncertain(instance, number, exc) from None
            raise tool_error(exc) from None
        return as_text({"sent": True, "message_id": answer["message_id"]})

    for tool in (list_instances, get_status):
        server.add_tool(tool, annotations=read)
    if not read_only and target.allows(Action.MANAGE_WHATSAPP):
        server.add_tool(
            get_qr,
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
            ),
        )
    if not read_only and target.allows(Action.SEND_WHATSAPP):
        server.add_tool(
            send_message,
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
            ),
        )
    return server


TOOLS_READ_ONLY = ("list_instances", "get_status")
TOOLS_WRITE = (*TOOLS_READ_ONLY, "get_qr", "send_message")
