"""`nextmavens token create|list|revoke`, `nextmavens members invite` and `nextmavens platform serve`.

The service's modules (FastAPI, uvicorn) load only when `platform serve` runs: every other command starts
without them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from nextmavens import ui
from nextmavens.cliparts import Failure, connection_options, make_engine, projects_option, run_engine
from nextmavens.control.db import connect_control
from nextmavens.control.store import access
from nextmavens.monitor.state import HEALTH_FILE, state_dir
from nextmavens.platform.issuing import Issued, IssueError, issue_token, revoke
from nextmavens.platform.tokens import LifetimeError, parse_lifetime

DEFAULT_LISTEN = "127.0.0.1:8100"


@click.group("token")
def token() -> None:
    """Access tokens for the platform service: shown once at creation, only their hash is stored."""


@token.command("create")
@click.option("--member", required=True, help="The member's email, as listed in an org.yaml (and applied).")
@click.option("--project", default=None, help="ORG/PROJECT: the token reaches this project only.")
@click.option("--org", default=None, help="The token reaches this org only (default: every org of the member).")
@click.option("--read-only", is_flag=True, help="Reads only, whatever the member's role.")
@click.option("--expires", default="90d", show_default=True, help="<n>d, <n>h or never.")
@click.option("--name", default="", help="What the token is for (shown in listings).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "token", ...} as JSON.')
@connection_options
def token_create(
    member: str,
    project: str | None,
    org: str | None,
    read_only: bool,
    expires: str,
    name: str,
    as_json: bool,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
) -> None:
    """Create a token for a member; it never grants more than the member's role at each request."""
    engine = make_engine(dsn, master_key, lock_timeout)
    try:
        lifetime = parse_lifetime(expires)
    except LifetimeError as exc:
        raise Failure(f"--expires: {exc}") from None
    ref = None
    if project is not None:
        project_org, _, ref = project.partition("/")
        if not project_org or not ref or "/" in ref:
            raise Failure(f"--project names a project as ORG/PROJECT, got {project!r}")
        if org is not None and org != project_org:
            raise Failure(f"--org {org} and --project {project} name different orgs")
        org = project_org
    expires_at = None if lifetime is None else datetime.now(UTC) + lifetime

    def create() -> Issued:
        with connect_control(engine.config.dsn) as conn:
            return issue_token(
                conn,
                member=member,
                org=org,
                project=ref,
                read_only=read_only,
                name=name,
                expires_at=expires_at,
                created_by=engine.config.who(),
            )

    try:
        issued: Issued = run_engine(create)
    except IssueError as exc:
        raise Failure(f"{exc}; no token was created") from None
    if as_json:
        click.echo(json.dumps({**issued.record.as_json(), "token": issued.token}, indent=2))
        return
    record = issued.record
    ui.err.print(
        f"Token {record.id} for {escape(record.member)} ({escape(describe_scope(record))}, expires "
        f"{record.expires_at.isoformat() if record.expires_at else 'never'}). It is shown only now:",
        soft_wrap=True,
    )
    click.echo(issued.token)


def describe_scope(record: access.TokenRecord) -> str:
    reach = (
        f"project {record.org}/{record.project}"
        if record.project
        else f"org {record.org}"
        if record.org
        else "all orgs"
    )
    return f"{reach}{', read-only' if record.read_only else ''}"


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@connection_options
def token_list(as_json: bool, dsn: str | None, master_key: Path, lock_timeout: float) -> None:
    """Every token (never its text): member, scope, expiry, last use, revocation."""
    engine = make_engine(dsn, master_key, lock_timeout)

    def read() -> list[access.TokenRecord]:
        with connect_control(engine.config.dsn) as conn:
            return access.tokens(conn)

    found: list[access.TokenRecord] = run_engine(read)
    if as_json:
        click.echo(json.dumps([t.as_json() for t in found], indent=2))
        return
    table = Table(title="access tokens", title_justify="left")
    for column in ("id", "member", "scope", "name", "expires", "last used", "revoked"):
        table.add_column(column, overflow="fold")
    for t in found:
        table.add_row(
            t.id,
            escape(t.member),
            escape(describe_scope(t)),
            escape(t.name),
            f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    ui.out.print(table)


@token.command("revoke")
@click.argument("token_id")
@connection_options
def token_revoke(token_id: str, dsn: str | None, master_key: Path, lock_timeout: float) -> None:
    """Revoke a token at once (revoking it again changes nothing)."""
    engine = make_engine(dsn, master_key, lock_timeout)

    def drop() -> datetime | None:
        with connect_control(engine.config.dsn) as conn:
            record = access.token(conn, token_id)
            return None if record is None else revoke(conn, record, engine.config.who())

    revoked_at = run_engine(drop)
    if revoked_at is None:
        raise Failure(f"no token {token_id!r} (see nextmavens token list)")
    ui.out.print(f"Token {escape(token_id)} is revoked (since {revoked_at.isoformat()}).")


# The platform's Resend account: `platform serve` sends projects' email with it, `members invite` invite links.
resend_url_option = click.option(
    "--resend-url",
    envvar="NEXTMAVENS_RESEND_URL",
    default=None,
    help="Resend's API (default https://api.resend.com; http only to loopback) [env NEXTMAVENS_RESEND_URL].",
)


def resend_key_option(use: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--resend-key-file",
        type=click.Path(path_type=Path),
        envvar="NEXTMAVENS_RESEND_KEY_FILE",
        default=None,
        help=f"A 0600 file holding the platform's Resend API key; {use} [env NEXTMAVENS_RESEND_KEY_FILE].",
    )


@click.group("members")
def members() -> None:
    """Members' dashboard sign-in (their roles come from org.yaml)."""


@members.command("invite")
@click.argument("email")
@click.option("--expires", default="72h", show_default=True, help="How long the link works: <n>h or <n>d.")
@click.option(
    "--url",
    "base_url",
    envvar="NEXTMAVENS_DASHBOARD_URL",
    default=f"http://{DEFAULT_LISTEN}",
    show_default=True,
    help="The dashboard's address the link starts with [env NEXTMAVENS_DASHBOARD_URL].",
)
@resend_key_option("with --from, the link is emailed")
@resend_url_option
@click.option(
    "--from",
    "sender",
    envvar="NEXTMAVENS_INVITE_FROM",
    default=None,
    help="The invite's sender, an address of a domain Resend verified [env NEXTMAVENS_INVITE_FROM].",
)
@connection_options
def members_invite(
    email: str,
    expires: str,
    base_url: str,
    resend_key_file: Path | None,
    resend_url: str | None,
    sender: str | None,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
) -> None:
    """Make a single-use link where EMAIL sets their dashboard password (again: it replaces the old one and ends
    their sessions): emailed to them when the platform has email configured (a Resend key file and --from),
    printed otherwise. Only the link's hash is stored."""
    from nextmavens.platform.invites import Invite, InviteError, create_invite

    engine = make_engine(dsn, master_key, lock_timeout)
    try:
        lifetime = parse_lifetime(expires)
    except LifetimeError as exc:
        raise Failure(f"--expires: {exc}") from None
    if lifetime is None:
        raise Failure("--expires: an invite link always expires; give <n>h or <n>d")
    if not base_url.startswith(("https://", "http://")):
        raise Failure(f"--url takes an http(s) address, got {base_url[:80]!r}")

    def create() -> Invite:
        with connect_control(engine.config.dsn) as conn:
            return create_invite(conn, email, lifetime, engine.config.who())

    try:
        invite = run_engine(create)
    except InviteError as exc:
        raise Failure(str(exc)) from None
    if resend_key_file is not None and sender:
        from nextmavens.email.resend import DEFAULT_URL, ResendClient, ResendError, check_url
        from nextmavens.files import read_secret_file
        from nextmavens.platform.invitemail import send_invite

        try:
            client = ResendClient(
                read_secret_file(resend_key_file, "the Resend key file").strip(), check_url(resend_url or DEFAULT_URL)
            )
            provider_id = send_invite(client, invite, invite.link(base_url), sender)
        except (ResendError, ValueError, OSError) as exc:
            why = escape(str(exc))
            ui.err.print(f"[yellow]warning[/]: the invite could not be emailed ({why}); give them the link:")
        else:
            ui.out.print(
                f"Invite emailed to {escape(invite.member)} (Resend {escape(provider_id)}), single use, expires "
                f"{invite.expires_at:%Y-%m-%d %H:%M} UTC."
            )
            return
    ui.err.print(f"Invite for {escape(invite.member)}, single use, expires {invite.expires_at:%Y-%m-%d %H:%M} UTC:")
    click.echo(invite.link(base_url))


@click.group("platform")
def platform() -> None:
    """The platform service: the authenticated HTTP API for the CLI's remote commands, MCP and the dashboard."""


@platform.command("serve")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    envvar="NEXTMAVENS_PLATFORM_LISTEN",
    help="HOST:PORT to listen on (loopback: nginx serves it) [env NEXTMAVENS_PLATFORM_LISTEN].",
)
@click.option(
    "--api-domain",
    envvar="NEXTMAVENS_API_DOMAIN",
    default=None,
    help="Platform API domain for project URLs [env NEXTMAVENS_API_DOMAIN].",
)
@click.option(
    "--privileged",
    envvar="NEXTMAVENS_PLATFORM_PRIVILEGED",
    default="",
    help="Argv prefix (shell words) for the steps that need root, e.g. 'sudo -n WRAPPER nextmavens'; "
    "empty: run them in this process [env NEXTMAVENS_PLATFORM_PRIVILEGED].",
)
@click.option(
    "--evolution-url",
    envvar="NEXTMAVENS_EVOLUTION_URL",
    default=None,
    help="Evolution API's URL on the host, for the WhatsApp endpoints [env NEXTMAVENS_EVOLUTION_URL].",
)
@click.option(
    "--evolution-key-file",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_EVOLUTION_KEY_FILE",
    default=None,
    help="A 0600 file holding Evolution's global API key [env NEXTMAVENS_EVOLUTION_KEY_FILE].",
)
@resend_url_option
@resend_key_option("without it email sending answers 503")
@click.option(
    "--email-send-per-minute",
    type=click.IntRange(min=1),
    envvar="NEXTMAVENS_EMAIL_SEND_PER_MINUTE",
    default=None,
    help="Emails sent a minute at most, all projects together; each project's email.send_per_minute is capped by "
    "it too (default 600) [env NEXTMAVENS_EMAIL_SEND_PER_MINUTE].",
)
@click.option(
    "--resend-webhook-secret-file",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_RESEND_WEBHOOK_SECRET_FILE",
    default=None,
    help="A 0600 file holding the whsec_ signing secret of Resend's webhook; without it /hooks/resend answers 503 "
    "[env NEXTMAVENS_RESEND_WEBHOOK_SECRET_FILE].",
)
@click.option(
    "--inbound-email-secret-file",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE",
    default=None,
    help="A 0600 file holding the secret the inbound mail worker signs with; without it /hooks/email/inbound "
    "answers 503 [env NEXTMAVENS_INBOUND_EMAIL_SECRET_FILE].",
)
@click.option(
    "--cloudinary-cloud",
    envvar="NEXTMAVENS_CLOUDINARY_CLOUD",
    default=None,
    help="Cloudinary's cloud name, where received mail's attachments go [env NEXTMAVENS_CLOUDINARY_CLOUD].",
)
@click.option(
    "--cloudinary-key-file",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_CLOUDINARY_KEY_FILE",
    default=None,
    help="A 0600 file holding Cloudinary's api_key:api_secret [env NEXTMAVENS_CLOUDINARY_KEY_FILE].",
)
@click.option(
    "--cloudinary-url",
    envvar="NEXTMAVENS_CLOUDINARY_URL",
    default=None,
    help="Cloudinary's API (default https://api.cloudinary.com) [env NEXTMAVENS_CLOUDINARY_URL].",
)
@click.option(
    "--forward-allow-private",
    is_flag=True,
    envvar="NEXTMAVENS_PLATFORM_FORWARD_ALLOW_PRIVATE",
    help="Forward WhatsApp rows to loopback and private addresses too (tests, the sandbox; never on a real host) "
    "[env NEXTMAVENS_PLATFORM_FORWARD_ALLOW_PRIVATE].",
)
@click.option(
    "--webhook-max-body-bytes",
    envvar="NEXTMAVENS_WEBHOOK_MAX_BODY_BYTES",
    type=click.IntRange(1024),
    default=None,
    help="Largest webhook body accepted, 413 above (default 1 MiB) [env NEXTMAVENS_WEBHOOK_MAX_BODY_BYTES].",
)
@click.option(
    "--webhook-rate",
    envvar="NEXTMAVENS_WEBHOOK_RATE",
    type=click.FloatRange(min=0.001),
    default=None,
    help="Webhooks per second per instance beyond the burst, 429 above (default 200) [env NEXTMAVENS_WEBHOOK_RATE].",
)
@click.option(
    "--webhook-burst",
    envvar="NEXTMAVENS_WEBHOOK_BURST",
    type=click.IntRange(1),
    default=None,
    help="Webhooks per instance accepted at once (default 2000) [env NEXTMAVENS_WEBHOOK_BURST].",
)
@click.option(
    "--studio-url",
    envvar="NEXTMAVENS_PLATFORM_STUDIO_URL",
    default=None,
    help="Public URL of the Studio name for projects (README 'Studio for a project'); unset: off "
    "[env NEXTMAVENS_PLATFORM_STUDIO_URL].",
)
@click.option(
    "--studio-meta-key-file",
    type=click.Path(path_type=Path),
    envvar="NEXTMAVENS_PLATFORM_STUDIO_META_KEY_FILE",
    default=None,
    help="A 0600 file holding postgres-meta's CRYPTO_KEY, for the meta gate "
    "[env NEXTMAVENS_PLATFORM_STUDIO_META_KEY_FILE].",
)
@click.option(
    "--studio-db-address",
    envvar="NEXTMAVENS_PLATFORM_STUDIO_DB_ADDRESS",
    default=None,
    help="HOST:PORT where postgres-meta reaches the database (default: this service's DSN's) "
    "[env NEXTMAVENS_PLATFORM_STUDIO_DB_ADDRESS].",
)
@click.option(
    "--studio-upstreams",
    envvar="NEXTMAVENS_PLATFORM_STUDIO_UPSTREAMS",
    default="",
    help="Fixed per-project Studios, 'REF=HOST:PORT ...'; unset with --privileged: started on demand "
    "[env NEXTMAVENS_PLATFORM_STUDIO_UPSTREAMS].",
)
@click.option(
    "--studio-max-running",
    envvar="NEXTMAVENS_PLATFORM_STUDIO_MAX_RUNNING",
    type=click.IntRange(1, 20),
    default=None,
    help="Studios started on demand at once, at most (default 2) [env NEXTMAVENS_PLATFORM_STUDIO_MAX_RUNNING].",
)
@click.option(
    "--studio-idle-minutes",
    envvar="NEXTMAVENS_PLATFORM_STUDIO_IDLE_MINUTES",
    type=click.IntRange(1, 1440),
    default=None,
    help="A Studio unused this long is stopped (default 15) [env NEXTMAVENS_PLATFORM_STUDIO_IDLE_MINUTES].",
)
@click.option(
    "--postgres-meta-url",
    envvar="NEXTMAVENS_PLATFORM_POSTGRES_META_URL",
    default=None,
    help="The host's postgres-meta (loopback URL) for TypeScript types, with --studio-meta-key-file "
    "[env NEXTMAVENS_PLATFORM_POSTGRES_META_URL].",
)
@projects_option
@connection_options
def serve(
    listen: str,
    api_domain: str | None,
    privileged: str,
    evolution_url: str | None,
    evolution_key_file: Path | None,
    resend_url: str | None,
    resend_key_file: Path | None,
    email_send_per_minute: int | None,
    resend_webhook_secret_file: Path | None,
    inbound_email_secret_file: Path | None,
    cloudinary_cloud: str | None,
    cloudinary_key_file: Path | None,
    cloudinary_url: str | None,
    forward_allow_private: bool,
    webhook_max_body_bytes: int | None,
    webhook_rate: float | None,
    webhook_burst: int | None,
    studio_url: str | None,
    studio_meta_key_file: Path | None,
    studio_db_address: str | None,
    studio_upstreams: str,
    postgres_meta_url: str | None,
    studio_max_running: int | None,
    studio_idle_minutes: int | None,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
) -> None:
    """Serve the /v1 API (OpenAPI document at /openapi.json) until stopped."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Failure(f"--listen takes HOST:PORT, got {listen!r}")
    upstreams = []
    for word in shlex.split(studio_upstreams):
        ref, _, address = word.partition("=")
        if not ref or not re.fullmatch(r"[^\s:]+:\d{1,5}", address):
            raise Failure(f"--studio-upstreams takes REF=HOST:PORT words, got {word!r}")
        upstreams.append((ref, address))
    if studio_db_address is not None and not re.fullmatch(r"[^\s:]+:\d{1,5}", studio_db_address):
        raise Failure(f"--studio-db-address takes HOST:PORT, got {studio_db_address!r}")
    engine = make_engine(dsn, master_key, lock_timeout)
    from nextmavens.platform.server import serve as run_server
    from nextmavens.platform.service import ServiceSettings

    settings = ServiceSettings(
        dsn=engine.config.dsn,
        master_key=master_key,
        projects_dir=projects_dir,
        lock_timeout_s=lock_timeout,
        api_domain=api_domain,
        health_file=state_dir() / HEALTH_FILE,
        privileged_argv=tuple(shlex.split(privileged)),
        evolution_url=evolution_url or None,
        evolution_key_file=evolution_key_file,
        resend_key_file=resend_key_file,
        resend_webhook_secret_file=resend_webhook_secret_file,
        inbound_email_secret_file=inbound_email_secret_file,
        cloudinary_cloud=cloudinary_cloud or None,
        cloudinary_key_file=cloudinary_key_file,
        forward_allow_private=forward_allow_private,
        studio_url=studio_url or None,
        studio_meta_key_file=studio_meta_key_file,
        studio_db_address=studio_db_address or None,
        studio_upstreams=tuple(upstreams),
        postgres_meta_url=postgres_meta_url or None,
    )
    given: dict[str, Any] = {
        "hook_max_body_bytes": webhook_max_body_bytes,
        "hook_rate_per_s": webhook_rate,
        "hook_burst": webhook_burst,
        "resend_url": resend_url,
        "email_send_per_minute": email_send_per_minute,
        "cloudinary_url": cloudinary_url,
        "studio_max_running": studio_max_running,
        "studio_idle_s": None if studio_idle_minutes is None else studio_idle_minutes * 60.0,
    }  # unset: ServiceSettings' defaults, the one place they are written
    settings = replace(settings, **{name: value for name, value in given.items() if value is not None})
    if not run_engine(lambda: run_server(settings, host.strip("[]"), int(port))):
        raise Failure("the platform service did not start (its log above says why)")


# Registered by nextmavens/cli.py.
platform_commands = (token, members, platform)
