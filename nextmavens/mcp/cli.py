"""`nextmavens mcp ...`: start an MCP server on stdio for an AI tool, or print the block its configuration needs.

Loads click and the standard library only until a server starts: the SDK is imported inside the command.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import click

PROJECT_HELP = "The project, ORG/REF (e.g. acme/shop)."
READ_ONLY_HELP = "Only the reading tools (forced for developers' and read-only tokens)."
EMAIL_READ_ONLY_HELP = "Only list_templates (forced for read-only tokens)."


def _serve(kind: str, project: str, read_only: bool, sends_per_minute: int) -> None:
    import importlib
    import threading

    from nextmavens.mcp.common import StartRefused, connect

    # The SDK's import (most of the start) runs while the service answers who the token is (network waits).
    importer = threading.Thread(target=importlib.import_module, args=(f"nextmavens.mcp.{kind}",), daemon=True)
    importer.start()
    try:
        target = connect(project)
    except StartRefused as exc:
        click.echo(f"nextmavens mcp {kind}: {exc}", err=True)
        sys.exit(3)
    importer.join()
    if kind == "supabase":
        from nextmavens.mcp.supabase import build_server

        server = build_server(target, read_only)
    elif kind == "email":
        from nextmavens.mcp.email import build_server as build_email

        server = build_email(target, read_only, sends_per_minute)
    else:
        from nextmavens.mcp.whatsapp import build_server as build_whatsapp

        server = build_whatsapp(target, read_only, sends_per_minute)
    server.run("stdio")


@click.group("mcp")
def mcp() -> None:
    """MCP servers for AI tools (Claude Desktop, Claude Code, editors): stdio, one project, through the platform
    service with the login's token (NEXTMAVENS_URL and NEXTMAVENS_TOKEN, or `nextmavens login`)."""


@mcp.command("supabase")
@click.option("--project", required=True, help=PROJECT_HELP)
@click.option("--read-only", is_flag=True, help=READ_ONLY_HELP)
def supabase(project: str, read_only: bool) -> None:
    """The project's database (tables, extensions, migrations, SQL), logs, URL and anon key."""
    _serve("supabase", project, read_only, 0)


@mcp.command("whatsapp")
@click.option("--project", required=True, help=PROJECT_HELP)
@click.option("--read-only", is_flag=True, help=READ_ONLY_HELP)
@click.option("--sends-per-minute", type=click.IntRange(1, 60), default=10, show_default=True)
def whatsapp(project: str, read_only: bool, sends_per_minute: int) -> None:
    """The project's WhatsApp instances: status, pairing QR code, sending (admins and owners)."""
    _serve("whatsapp", project, read_only, sends_per_minute)


@mcp.command("email")
@click.option("--project", required=True, help=PROJECT_HELP)
@click.option("--read-only", is_flag=True, help=EMAIL_READ_ONLY_HELP)
@click.option("--sends-per-minute", type=click.IntRange(1, 60), default=10, show_default=True)
def email(project: str, read_only: bool, sends_per_minute: int) -> None:
    """The project's email: its templates, and sending (writing tokens of developers and above)."""
    _serve("email", project, read_only, sends_per_minute)


def config_block(project: str, read_only: bool, command: str) -> dict[str, object]:
    """The `mcpServers` block of Claude Desktop, Claude Code and Cursor for the project's servers. No token: the
    servers read the stored login (or NEXTMAVENS_URL/NEXTMAVENS_TOKEN added to each `env`)."""
    ref = project.partition("/")[2]
    flag = ["--read-only"] if read_only else []
    return {
        "mcpServers": {
            f"nextmavens-{ref}": {"command": command, "args": ["mcp", "supabase", "--project", project, *flag]},
            f"nextmavens-{ref}-whatsapp": {
                "command": command,
                "args": ["mcp", "whatsapp", "--project", project, *flag],
            },
            f"nextmavens-{ref}-email": {"command": command, "args": ["mcp", "email", "--project", project, *flag]},
        }
    }


@mcp.command("config")
@click.argument("project", metavar="ORG/REF")
@click.option("--read-only", is_flag=True, help="Configure the servers read-only.")
def config(project: str, read_only: bool) -> None:
    """Print the JSON block to paste into an MCP client's configuration (no secret in it)."""
    from nextmavens.mcp.common import StartRefused, split_project

    try:
        split_project(project)
    except StartRefused as exc:
        raise click.UsageError(str(exc)) from None
    found = shutil.which("nextmavens")
    command = os.path.abspath(found) if found else "nextmavens"
    click.echo(json.dumps(config_block(project, read_only, command), indent=2))
