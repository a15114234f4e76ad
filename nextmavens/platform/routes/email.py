"""A project's email: `POST /v1/projects/{org}/{ref}/email` sends one (emailsend.send_email), `GET .../email/templates`
lists the templates it may send with.

Sending is the one route that also takes the project's service_role key instead of an access token, so the project's
own apps can send: `Authorization: Bearer <service_role JWT>`, checked against that project's JWT secret (HS256, role
service_role, not expired); a key of another project, an anon key or a forged one is refused like a bad token (401,
counted against the client address). The audit log records the recipients' count, the template and the row id, never
an address, a subject or content.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from nextmavens.control.store import access
from nextmavens.keys import JWT_ALGORITHM, JWT_ISSUER
from nextmavens.manifest.models import EMAIL_LOCAL_PATTERN
from nextmavens.platform.auth import (
    UNAUTHENTICATED,
    ApiError,
    Caller,
    audit_call,
    authenticate,
    client_address,
    service_of,
)
from nextmavens.platform.authz import Action
from nextmavens.platform.emailsend import EmailError, EmailRequest, Mailer, project_templates, send_email
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.routes.projects import visible_project
from nextmavens.platform.tokens import looks_like_token

log = logging.getLogger("nextmavens.platform.email")

router = APIRouter(tags=["email"], responses=ERRORS)
SEND = Action.SEND_EMAIL.value
# A recipient as Resend takes it: `a@b.c` or `Name <a@b.c>`, one line, no second address
_RECIPIENT = re.compile(r"(?:[^<>\r\n,;\"]{0,100} ?<)?[^<>\s@,;\"]{1,64}@[A-Za-z0-9.-]{1,253}>?")
MAX_RECIPIENTS = 50


class SendBody(BaseModel):
    to: Annotated[list[str], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    subject: Annotated[str, Field(min_length=1, max_length=998)]
    template: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")] | None = Field(
        default=None, description="A template of the org's templates folder (<name>.html and/or <name>.txt)"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="The template's variables (JSON values)")
    html: Annotated[str, Field(max_length=2_000_000)] | None = None
    text: Annotated[str, Field(max_length=2_000_000)] | None = None
    sender: Annotated[str, Field(pattern=rf"^{EMAIL_LOCAL_PATTERN}$", max_length=64)] = Field(
        default="noreply", description="The address's local part before @from_domain (the manifest's)"
    )
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")] | None = Field(
        default=None, description="The same key sends at most once; give one to retry safely"
    )

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for index, address in enumerate(value):
            if not _RECIPIENT.fullmatch(address):
                raise ValueError(f"to[{index}] is not an email address (a@b.example or Name <a@b.example>)")
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("the subject is one line")
        return value


class EmailSentBody(BaseModel):
    id: int = Field(description="The row in the project's email.messages")
    idempotency_key: str
    provider_id: str | None = Field(description="Resend's id of the email")
    status: str
    replayed: bool = Field(description="true: an earlier send with this idempotency_key answered; nothing was sent")


class TemplateItem(BaseModel):
    name: str
    html: bool
    text: bool


class TemplateList(BaseModel):
    templates: list[TemplateItem]


def mailer_of(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


def _service_role_actor(request: Request, org: str, ref: str, presented: str) -> str | None:
    """`service_role@org/ref` when `presented` is that project's service_role key; None otherwise."""
    try:
        target = mailer_of(request).target(org, ref)
    except EmailError:
        return None
    try:
        claims = jwt.decode(
            presented,
            target.jwt_secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "role", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    return f"service_role@{org}/{ref}" if claims.get("role") == "service_role" else None


def email_sender(org: OrgSlug, ref: ProjectRef, request: Request) -> tuple[str, Caller | None]:
    """(actor, the token's caller or None for the service_role key); 401/429 otherwise. A dependency: it runs
    before the body is read, so an unauthenticated request learns nothing from the body's validation."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or looks_like_token(presented) or presented.count(".") != 2:
        caller = authenticate(request)
        visible_project(service_of(request), caller, Action.SEND_EMAIL, org, ref)
        return caller.member, caller
    service = service_of(request)
    address = client_address(request)
    wait = service.retry_after(address)
    if wait:
        raise ApiError(
            429, "rate_limited", "too many failed authentications; try again later", {"Retry-After": str(wait)}
        )
    actor = _service_role_actor(request, org, ref, presented)
    if actor is None:
        service.auth_failed(address)
        detail = {"reason": "not the project's service_role key", "client": address, "route": request.url.path[:200]}
        with service.pool.connection() as conn:
            access.write_audit(conn, "anonymous", "authenticate", "unauthenticated", detail=detail)
        raise ApiError(401, "unauthenticated", UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})
    return actor, None


def _audit(
    request: Request, actor: str, caller: Caller | None, result: str, org: str, ref: str, detail: dict[str, Any]
) -> None:
    service = service_of(request)
    if caller is not None:
        audit_call(service, caller, SEND, result, org, ref, detail)
        return
    with service.pool.connection() as conn:
        access.write_audit(conn, actor, SEND, result, org, ref, detail)


@router.post(
    "/v1/projects/{org}/{ref}/email",
    response_model=EmailSentBody,
    status_code=201,
    responses={
        200: {"model": EmailSentBody, "description": "An earlier send with this idempotency_key (nothing sent)"},
        409: {"model": ErrorBody, "description": "The project declares no email, is not active or not applied"},
        422: {"model": ErrorBody, "description": "Invalid input, a template error, or Resend refused the email"},
        429: {"model": ErrorBody, "description": "The project's send_per_minute is spent (Retry-After: seconds)"},
        502: {"model": ErrorBody, "description": "Resend failed or did not answer; the same idempotency_key is safe"},
        503: {"model": ErrorBody, "description": "No Resend key, or the project's database is unavailable"},
    },
)
def send(
    org: OrgSlug,
    ref: ProjectRef,
    body: SendBody,
    request: Request,
    sender: Annotated[tuple[str, Caller | None], Depends(email_sender)],
) -> JSONResponse:
    """Send one email from the manifest's `from_name <sender@from_domain>` (a platform token of a developer or
    above, or the project's service_role key), rendered from a template or given as html/text, and record it in
    the project's email.messages."""
    actor, caller = sender
    detail: dict[str, Any] = {"recipients": len(body.to), "template": body.template}
    message = EmailRequest(
        to=tuple(body.to),
        subject=body.subject,
        template=body.template,
        data=body.data,
        html=body.html,
        text=body.text,
        sender=body.sender,
        idempotency_key=body.idempotency_key,
    )
    try:
        sent = send_email(mailer_of(request), org, ref, message)
    except EmailError as exc:
        _audit(request, actor, caller, exc.code, org, ref, detail)
        if exc.status == 404 and caller is None:  # the key was the project's a moment ago: say no more than that
            raise ApiError(401, "unauthenticated", UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"}) from None
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        raise ApiError(exc.status, exc.code, exc.message, headers) from None
    _audit(request, actor, caller, "ok", org, ref, {**detail, "id": sent.id, "replayed": sent.replayed})
    answer = {
        "id": sent.id,
        "idempotency_key": sent.idempotency_key,
        "provider_id": sent.provider_id,
        "status": sent.status,
        "replayed": sent.replayed,
    }
    return JSONResponse(answer, status_code=200 if sent.replayed else 201)


@router.get("/v1/projects/{org}/{ref}/email/templates", response_model=TemplateList)
def templates(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The templates the project may send with (`list_templates`): its org's `templates/<name>.{html,txt}`."""
    visible_project(service_of(request), caller, Action.READ_PROJECT, org, ref)
    try:
        found = project_templates(mailer_of(request), org, ref)
    except EmailError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return {"templates": [{"name": t.name, "html": t.html, "text": t.text} for t in found]}
