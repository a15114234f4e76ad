"""Sending a project's email: the one function every client calls (the /v1 route, the CLI through it, the MCP
Email server): `send_email(service, org, ref, request)`.

What a send needs (the project's email settings from its manifest, its owner's login, its JWT secret for the
service_role key) is looked up once per project and kept `hook_secret_ttl_s`; rows are written through a small
pool per project logged in as its owner role (never a superuser). Never a double send: the row for the idempotency
key is claimed before Resend is asked, and Resend gets the same key (namespaced by the project) on every attempt,
so a retried request, whether by the client or by the caller, gets the first answer back.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from nextmavens.control.db import owner_dsn
from nextmavens.email.resend import Outgoing, ResendClient, ResendError
from nextmavens.email.store import claim_message, mark_failed, mark_sent
from nextmavens.email.templates import Rendered, TemplateError, TemplateInfo, list_templates, render
from nextmavens.files import read_secret_file
from nextmavens.manifest.models import Email
from nextmavens.naming import project_names
from nextmavens.platform.ratelimit import FailureLimiter
from nextmavens.platform.service import Service

log = logging.getLogger("nextmavens.platform.email")

DEFAULT_SENDER = "noreply"


class EmailError(Exception):
    """A send refused or failed: `status` and `code` for the API's answer; the message holds no secret."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class EmailRequest:
    to: tuple[str, ...]
    subject: str
    template: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None
    text: str | None = None
    sender: str = DEFAULT_SENDER  # the local part before @from_domain
    idempotency_key: str | None = None  # the caller's: the same key never sends twice (24 h at Resend, forever here)


@dataclass(frozen=True)
class EmailSent:
    id: int  # the row in email.messages
    idempotency_key: str
    provider_id: str | None
    status: str
    replayed: bool  # an earlier send with this key answered


@dataclass(frozen=True)
class MailTarget:
    """What sending for one project needs."""

    org: str
    ref: str
    email: Email
    owner_dsn: str = field(repr=False)
    jwt_secret: str = field(repr=False)


class Mailer:
    """Per service: the Resend client, each project's target and pool."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._targets: dict[tuple[str, str], tuple[float, MailTarget]] = {}
        self._pools: dict[str, tuple[str, ConnectionPool[Any]]] = {}
        self._client: ResendClient | None = None
        # each project's send budget (the manifest's email.send_per_minute, capped by the operator's
        # email_send_per_minute): one bucket per project whose rate follows the manifest without refilling it
        # (a changed value must not hand out a fresh burst), and one bucket for all projects together (the shared
        # Resend account); in this process's memory (one service process on the host)
        self._budgets: dict[str, FailureLimiter] = {}
        ceiling = service.settings.email_send_per_minute
        self._all = FailureLimiter(burst=ceiling, refill_s=60.0 / ceiling)

    def client(self) -> ResendClient:
        settings = self.service.settings
        if settings.resend_key_file is None:
            raise EmailError(
                503, "unavailable", "email is not available: the service has no Resend key (NEXTMAVENS_RESEND_KEY_FILE)"
            )
        with self._lock:
            if self._client is None:
                try:
                    key = read_secret_file(settings.resend_key_file, "Resend's key file")
                except OSError as exc:
                    log.error("cannot read Resend's key: %s", exc)
                    raise EmailError(503, "unavailable", "email is not available: cannot read Resend's key") from None
                self._client = ResendClient(api_key=key, base_url=settings.resend_url)
            return self._client

    def target(self, org: str, ref: str) -> MailTarget:
        """The project's target (cached), or EmailError 404 (unknown, another org's, not active) or 409 (no email)."""
        now = time.monotonic()
        with self._lock:
            cached = self._targets.get((org, ref))
        if cached is not None and cached[0] > now:
            return cached[1]
        service = self.service
        manifests = service.manifests.current()
        project = manifests.by_ref(ref) if manifests else None
        view = service.catalog().views.get((org, ref))
        if project is None or project.org != org or view is None:
            raise EmailError(404, "not_found", f"no project {org}/{ref}")
        if project.manifest.state != "active" or view.applied_state != "active":
            raise EmailError(409, "not_active", f"{org}/{ref} is not active")
        if project.manifest.email is None:
            raise EmailError(409, "email_not_declared", f"{org}/{ref} declares no email in its manifest")
        with service.engine.secrets() as store:
            secrets = store.project_secrets(ref)
        password = secrets.passwords.get(project_names(ref).owner) if secrets else None
        if secrets is None or password is None:
            raise EmailError(409, "not_applied", f"{org}/{ref} has not been applied yet")
        dsn = owner_dsn(
            service.settings.dsn,
            ref,
            password,
            service.settings.hook_statement_timeout_ms,
            application_name="nextmavens-email",
            search_path="pg_catalog",
        )
        target = MailTarget(org, ref, project.manifest.email, dsn, secrets.jwt_secret)
        with self._lock:
            self._targets[(org, ref)] = (now + service.settings.hook_secret_ttl_s, target)
        return target

    def spend(self, target: MailTarget) -> None:
        """One send of the project's budget and of the platform's, or EmailError 429 with the seconds until the next
        one is allowed (neither is spent then)."""
        ceiling = self.service.settings.email_send_per_minute
        rate = min(target.email.send_per_minute, ceiling)
        now = time.monotonic()
        with self._lock:
            limiter = self._budgets.get(target.ref)
            if limiter is None:
                limiter = self._budgets[target.ref] = FailureLimiter(burst=rate, refill_s=60.0 / rate)
            limiter.burst, limiter.refill_s = rate, 60.0 / rate  # a changed rate keeps what is already spent
            wait = limiter.retry_after(target.ref, now)
            shared = self._all.retry_after("all", now)
            if not wait and not shared:
                limiter.failed(target.ref, now)
                self._all.failed("all", now)
        if wait:
            raise EmailError(
                429, "rate_limited", f"{target.org}/{target.ref} may send {rate} emails a minute; try again later", wait
            )
        if shared:
            raise EmailError(
                429, "rate_limited", f"the platform sends at most {ceiling} emails a minute; try again later", shared
            )

    def pool(self, target: MailTarget) -> ConnectionPool[Any]:
        with self._lock:
            current = self._pools.get(target.ref)
            if current is not None and current[0] == target.owner_dsn:
                return current[1]
            pool: ConnectionPool[Any] = ConnectionPool(
                target.owner_dsn,
                min_size=0,
                max_size=self.service.settings.hook_pool_size,
                timeout=self.service.settings.pool_timeout_s,
                max_idle=300,
                kwargs={"autocommit": True},
                configure=_refuse_superuser,
                open=False,
                name=f"email-{target.ref}",
            )
            pool.open()
            self._pools[target.ref] = (target.owner_dsn, pool)
        if current is not None:
            current[1].close()
        return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for _, pool in pools:
            pool.close()


def _refuse_superuser(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user").fetchone()
    if row is None or row[0]:
        raise psycopg.OperationalError("the email session is not the project owner's")


def project_templates(mailer: Mailer, org: str, ref: str) -> list[TemplateInfo]:
    """The templates project org/ref may send with (`list_templates`: its org's templates folder)."""
    mailer.target(org, ref)
    return list_templates(mailer.service.settings.projects_dir, org)


def _content(service: Service, org: str, request: EmailRequest) -> Rendered:
    if request.template is not None:
        if request.html is not None or request.text is not None:
            raise EmailError(422, "invalid_request", "give a template or html/text, not both")
        try:
            return render(service.settings.projects_dir, org, request.template, request.data)
        except TemplateError as exc:
            raise EmailError(422, "template_error", str(exc)) from None
    if request.html is None and request.text is None:
        raise EmailError(422, "invalid_request", "give a template, or html and/or text")
    return Rendered(html=request.html, text=request.text)


def send_email(mailer: Mailer, org: str, ref: str, request: EmailRequest) -> EmailSent:
    """Send one email for project org/ref (authorization is the caller's) and record it in its email.messages.

    The same `idempotency_key` sends at most once: a repeated call answers the first send's row (replayed)."""
    target = mailer.target(org, ref)
    client = mailer.client()
    # before rendering (a template's render is the costly part the budget bounds) and before the row is claimed
    # (a refused send leaves nothing to retry but the request)
    mailer.spend(target)
    content = _content(mailer.service, org, request)
    key = request.idempotency_key or uuid.uuid4().hex
    email = target.email
    outgoing = Outgoing(
        sender=f"{email.from_name} <{request.sender}@{email.from_domain}>",
        to=request.to,
        subject=request.subject,
        html=content.html,
        text=content.text,
        reply_to=email.reply_to,
        tags=(("project", ref),) + ((("template", request.template),) if request.template else ()),
    )
    try:
        with mailer.pool(target).connection() as conn:
            row, made = claim_message(conn, key, list(request.to), request.subject, request.template)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        log.warning("email for %s/%s not recorded (%s)", org, ref, type(exc).__name__)
        raise EmailError(503, "unavailable", "the project's database is unavailable; try again", 5) from None
    except psycopg.ProgrammingError as exc:
        log.error("email for %s/%s not recorded (%s); has apply run?", org, ref, type(exc).__name__)
        raise EmailError(503, "unavailable", "the project's email tables are not there yet; try again", 5) from None
    if not made and row.provider_id is not None:
        return EmailSent(row.id, key, row.provider_id, row.status, replayed=True)
    try:
        provider_id = client.send(outgoing, f"{ref}/{key}")
    except ResendError as exc:
        with mailer.pool(target).connection() as conn:
            mark_failed(conn, row.id, str(exc))
        log.warning("email %s of %s/%s not sent: %s", row.id, org, ref, exc)
        if exc.status == 401:  # the platform's key, not the caller's request
            raise EmailError(503, "unavailable", "email is not available: Resend refused the platform's key") from None
        if exc.permanent:
            raise EmailError(409 if exc.status == 409 else 422, "resend_refused", str(exc)) from None
        raise EmailError(502, "resend_failed", f"{exc}; sending again with the same idempotency_key is safe") from None
    with mailer.pool(target).connection() as conn:
        mark_sent(conn, row.id, provider_id)
    return EmailSent(row.id, key, provider_id, "sent", replayed=not made)
