"""The Email MCP server for one project: its templates and sending, through the platform service as the caller's
token (`POST .../email`, which calls emailsend.send_email).

send_email is listed only for tokens that may send (authz `email.send`: a writing token of a developer or above)
and not with --read-only. A connection sends at most `sends_per_minute` emails. Every send carries an idempotency
key (the model's, or one made here per call), so the service never sends the same call twice. A send that failed
after the request left (no answer, a broken answer, Resend failing) is reported as UNCERTAIN with its key: the
email may have gone, so the model is told to check with the user instead of sending again.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from nextmavens.mcp.common import PerMinute, Target, as_text, call, left_the_client, tool_error, untrusted
from nextmavens.platform.authz import Action
from nextmavens.remote.api import RemoteError

SENDS_PER_MINUTE = 10

TO = Field(
    description="Recipients (1 to 50): a@b.example or Name <a@b.example>", min_length=1, max_length=50
)
SUBJECT = Field(description="The subject, one line", min_length=1, max_length=998)
TEMPLATE = Field(
    default=None,
    description="A template's name (see list_templates); its variables go in data. Or give html and/or text",
    pattern=r"^[a-z][a-z0-9_-]{0,63}$",
)
DATA = Field(default=None, description="The template's variables (JSON values)")
HTML = Field(default=None, description="The HTML body, when no template is given")
TEXT = Field(default=None, description="The plain-text body, when no template is given")
SENDER = Field(
    default=None,
    description="The sender's local part only, e.g. billing for billing@<the project's from_domain>; the domain is "
    "always the project's own (default: noreply)",
    max_length=64,
)
KEY = Field(
    default=None,
    description="A key naming this one email (e.g. welcome-user-42): the same key never sends twice. One is made "
    "when none is given",
    min_length=1,
    max_length=200,
    pattern=r"^[\x21-\x7e]+$",
)


def sender_local_part(sender: str) -> str:
    """The local part the service puts before the manifest's from_domain; any domain given is refused, since mail
    is only ever sent from the project's own domain (the service refuses every other form too)."""
    from nextmavens.manifest.models import EMAIL_LOCAL_PATTERN  # its pydantic models: only when a sender is given

    local, at, domain = sender.strip().partition("@")
    if at:
        raise ToolError(
            f"sender: give only the part before '@' (e.g. {local or 'billing'!r}); mail is sent from the project's "
            f"own from_domain only, never from {domain!r} or any other domain"
        )
    if not re.fullmatch(EMAIL_LOCAL_PATTERN, local, re.ASCII):
        raise ToolError("sender: lowercase letters, digits and . _ + - only, e.g. billing or no-reply")
    return local


def new_key() -> str:
    """An idempotency key for one call of send_email."""
    return f"mcp-{secrets.token_hex(16)}"


def uncertain(key: str, exc: RemoteError) -> ToolError:
    return ToolError(
        f"UNCERTAIN: the email (idempotency key {key}) may or may not have been sent ({exc.message}). Do NOT send it "
        "again: tell the user the outcome is unknown and let them check the project's email.messages or the "
        "recipient's inbox first, since another send may deliver it twice."
    )


def build_server(target: Target, read_only: bool, sends_per_minute: int = SENDS_PER_MINUTE) -> MCPServer:
    server = MCPServer(
        name="nextmavens-email",
        instructions=(
            f"Email of the NextMavens project {target.project}. Sending reaches real people: send only what the "
            "user asked for, to whom they asked."
        ),
    )
    limit = PerMinute(sends_per_minute)

    def list_templates() -> str:
        """The email templates the project may send with: name, and whether it has an HTML and a text part."""
        found = call(target, "GET", target.path("email", "templates"))["templates"]
        names = [{key: t[key] for key in ("name", "html", "text")} for t in found]
        return untrusted("The project's email templates", as_text(names))

    def send_email(
        to: Annotated[list[str], TO],
        subject: Annotated[str, SUBJECT],
        template: Annotated[str | None, TEMPLATE] = None,
        data: Annotated[dict[str, Any] | None, DATA] = None,
        html: Annotated[str | None, HTML] = None,
        text: Annotated[str | None, TEXT] = None,
        idempotency_key: Annotated[str | None, KEY] = None,
        sender: Annotated[str | None, SENDER] = None,
    ) -> str:
        """Send one email to real people from the project's address (sender@its from_domain), rendered from a
        template or given as html/text. Only when the user asked for this exact email and these recipients."""
        local = None if sender is None else sender_local_part(sender)  # refused before it counts or leaves
        limit.admit("emails")
        key = idempotency_key or new_key()
        body: dict[str, Any] = {"to": to, "subject": subject, "idempotency_key": key}
        if local is not None:
            body["sender"] = local
        for name, value in (("template", template), ("data", data), ("html", html), ("text", text)):
            if value is not None:
                body[name] = value
        try:
            answer = target.client.post(target.path("email"), body)
        except RemoteError as exc:
            if left_the_client(exc):
                raise uncertain(key, exc) from None
            raise tool_error(exc) from None
        return as_text(
            {
                "sent": answer["status"] == "sent",
                "status": answer["status"],
                "replayed": answer["replayed"],  # true: an earlier send with this key answered, nothing sent now
                "id": answer["id"],
                "provider_id": answer["provider_id"],
                "idempotency_key": answer["idempotency_key"],
            }
        )

    server.add_tool(
        list_templates,
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    if not read_only and target.allows(Action.SEND_EMAIL):
        server.add_tool(
            send_email,
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
            ),
        )
    return server


TOOLS_READ_ONLY = ("list_templates",)
TOOLS_WRITE = (*TOOLS_READ_ONLY, "send_email")
