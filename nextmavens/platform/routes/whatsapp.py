"""A project's WhatsApp instances in the shared Evolution API: list, pair (connect), status, send (whatsappops).

Evolution is reached with its global key, which the service reads from a 0600 file; rows Evolution answers hold
instance tokens and webhook secrets, and none of them leaves here. Evolution's error texts are scrubbed of the
key by its client. Without Evolution settings every endpoint answers 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, Field, field_validator

from nextmavens.manifest.models import INSTANCE_NAME_PATTERN
from nextmavens.platform import whatsappops
from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.models import (
    ERRORS,
    ErrorBody,
    WhatsAppConnect,
    WhatsAppInstances,
    WhatsAppSent,
    WhatsAppStatus,
)
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.whatsapp.pairing import (
    NUMBER_PATTERN,
    TEXT_MAX_CHARS,
    InvalidMessage,
    check_text,
)

InstanceName = Annotated[str, Path(pattern=INSTANCE_NAME_PATTERN, max_length=40)]
EVOLUTION_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The instance is not in a state for this (not connected, refused)"},
    422: {"model": ErrorBody, "description": "Invalid input, or Evolution refused it (a number not on WhatsApp)"},
    502: {"model": ErrorBody, "description": "Evolution failed or did not answer"},
    503: {"model": ErrorBody, "description": "The service has no Evolution settings, or cannot read its key"},
}
router = APIRouter(tags=["whatsapp"], responses={**ERRORS, **EVOLUTION_ERRORS})


class ConnectRequest(BaseModel):
    number: Annotated[str, Field(pattern=NUMBER_PATTERN)] | None = Field(
        default=None, description="The phone's number (digits, country code first): ask for a pairing code"
    )


class SendRequest(BaseModel):
    number: Annotated[str, Field(pattern=NUMBER_PATTERN, description="Digits, country code first (E.164 without +)")]
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        try:
            return check_text(text)
        except InvalidMessage as exc:
            raise ValueError(str(exc)) from None


@router.get("/v1/projects/{org}/{ref}/whatsapp", response_model=WhatsAppInstances)
def list_instances(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The project's instances (those apply made, and any Evolution holds under its names): state, paired number,
    webhook URL. Never a token or a webhook secret."""
    return whatsappops.list_instances(service_of(request), caller, org, ref)


@router.post("/v1/projects/{org}/{ref}/whatsapp/{instance}/connect", response_model=WhatsAppConnect)
def connect(
    org: OrgSlug,
    ref: ProjectRef,
    instance: InstanceName,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    body: Annotated[ConnectRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Start pairing a phone (or carry on): the current QR code (text and PNG), or with a number a pairing code.
    Early answers hold no code yet: call again every 2-3 s until one comes, and until the state is open."""
    number = body.number if body is not None else None
    return whatsappops.connect(service_of(request), caller, org, ref, instance, number)


@router.get("/v1/projects/{org}/{ref}/whatsapp/{instance}/status", response_model=WhatsAppStatus)
def status(
    org: OrgSlug,
    ref: ProjectRef,
    instance: InstanceName,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    """The instance's state, and once paired its phone number and WhatsApp profile name."""
    return whatsappops.status(service_of(request), caller, org, ref, instance)


@router.post(
    "/v1/projects/{org}/{ref}/whatsapp/{instance}/messages",
    response_model=WhatsAppSent,
    status_code=201,
    responses={429: {"model": ErrorBody, "description": "Too many messages through this instance (see Retry-After)"}},
)
def send_message(
    org: OrgSlug,
    ref: ProjectRef,
    instance: InstanceName,
    message: SendRequest,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, str]:
    """Send a text through a connected instance (admins and owners); the message's id. Rate limited per instance.
    The audit log records the instance and the message id, never the number or the text."""
    return whatsappops.send(service_of(request), caller, org, ref, instance, message.number, message.text)
