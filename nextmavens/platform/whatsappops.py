"""A project's WhatsApp instances in the shared Evolution API: listed, paired (connect), their state, and a message
sent, each authorized by auth.guard and audited: the /v1 WhatsApp routes and the dashboard call these.

Evolution is reached with its global key, which the service reads from a 0600 file; rows Evolution answers hold
instance tokens and webhook secrets, and none of them leaves here. Evolution's error texts are scrubbed of the
key by its client. Without Evolution settings every function answers 503.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nextmavens.edge.clients.evolution import EvolutionApi, EvolutionError
from nextmavens.edge.clients.http import AdminApiError
from nextmavens.edge.whatsappinstances import observed_from_row
from nextmavens.files import SecretFileError
from nextmavens.naming import evolution_instance_name, evolution_instance_owner
from nextmavens.platform.auth import ApiError, Caller, audit_call
from nextmavens.platform.authz import Action
from nextmavens.platform.projectaccess import visible_project
from nextmavens.platform.service import Service
from nextmavens.whatsapp.pairing import OPEN, REFUSED, paired_from_row, read_connect
from nextmavens.whatsapp.qr import qr_png
from nextmavens.whatsapp.view import instance_rows

log = logging.getLogger("nextmavens.platform")

CONNECT = "whatsapp.connect"  # audited under this name (its authorization: whatsapp.manage)
MISSING = "missing"  # Evolution's connectionState for an unknown instance (the client's word)
NO_EVOLUTION = (
    "WhatsApp is not available: the service has no Evolution settings (NEXTMAVENS_EVOLUTION_URL and "
    "NEXTMAVENS_EVOLUTION_KEY_FILE)"
)


def evolution_of(service: Service) -> EvolutionApi:
    try:
        api = service.evolution()
    except SecretFileError as exc:
        log.error("cannot read Evolution's key: %s", exc)
        raise ApiError(
            503, "unavailable", "WhatsApp is not available: the service cannot read Evolution's key"
        ) from None
    if api is None:
        raise ApiError(503, "unavailable", NO_EVOLUTION)
    return api


def evolution_failed(exc: AdminApiError) -> ApiError:
    """Evolution refusing the call (4xx: what was asked) is the caller's 422; anything else is a 502."""
    if isinstance(exc, EvolutionError) and exc.status is not None and 400 <= exc.status < 500:
        return ApiError(422, "evolution_refused", str(exc))
    log.warning("evolution failed: %s", exc)
    detail = str(exc) if isinstance(exc, EvolutionError) else "it did not answer"
    return ApiError(502, "evolution_failed", f"Evolution failed: {detail}")


@contextmanager
def refusals_audited(
    service: Service, caller: Caller, action: str, org: str, ref: str, detail: dict[str, Any]
) -> Iterator[None]:
    """After authorization: any refusal or failure in the block is audited under its code, then raised; an
    Evolution failure becomes the caller's 422 or 502 (evolution_failed)."""
    try:
        yield
    except AdminApiError as exc:
        refused = evolution_failed(exc)
        audit_call(service, caller, action, refused.code, org, ref, detail)
        raise refused from None
    except ApiError as exc:
        audit_call(service, caller, action, exc.code, org, ref, detail)
        raise


def current_state(api: EvolutionApi, org: str, ref: str, instance: str) -> tuple[str, str]:
    """(Evolution name, state) of a project's instance; 404 when Evolution has none."""
    name = evolution_instance_name(ref, instance)
    state = api.connection_state(name)
    if state == MISSING:
        raise ApiError(404, "not_found", f"no WhatsApp instance {instance} in {org}/{ref}")
    return name, state


def list_instances(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    """The project's instances (those apply made, and any Evolution holds under its names): state, paired number,
    webhook URL. Never a token or a webhook secret."""
    action = Action.READ_PROJECT
    visible_project(service, caller, action, org, ref)
    with refusals_audited(service, caller, "whatsapp.list", org, ref, {}):
        api = evolution_of(service)
        with service.engine.secrets() as store:
            made = store.whatsapp_instances(ref) if store.project_org(ref) == org else []
        observed = {
            o.evolution_name: o
            for o in map(observed_from_row, api.fetch_instances())
            if (evolution_instance_owner(o.evolution_name) or ("",))[0] == ref
        }
        webhook_urls = {}
        for name, instance in observed.items():
            webhook = api.find_webhook(name, [instance.token])
            webhook_urls[name] = str((webhook or {}).get("url") or "")
    rows = instance_rows(ref, {name: ("", "") for name in made}, observed, webhook_urls)
    return {"instances": [{k: v for k, v in row.items() if k not in ("token", "webhook_secret")} for row in rows]}


def connect(service: Service, caller: Caller, org: str, ref: str, instance: str, number: str | None) -> dict[str, Any]:
    """Start pairing a phone (or carry on): the current QR code (text and PNG), or with a number a pairing code."""
    visible_project(service, caller, Action.MANAGE_WHATSAPP, org, ref)
    detail = {"instance": instance, "by_number": number is not None}
    code = pairing_code = None
    with refusals_audited(service, caller, CONNECT, org, ref, detail):
        api = evolution_of(service)
        name, state = current_state(api, org, ref, instance)
        if state == REFUSED:
            raise ApiError(409, "refused", "Evolution's QR limit was reached for this session: call connect again")
        if state != OPEN:
            answer = read_connect(api.connect(name, number))
            code, pairing_code = answer.code, answer.pairing_code
            state = answer.state or api.connection_state(name)
    audit_call(service, caller, CONNECT, "ok", org, ref, {**detail, "state": state})
    return {
        "code": code,
        "png_base64": base64.b64encode(qr_png(code)).decode() if code else None,
        "pairing_code": pairing_code,
        "state": state,
    }


def status(service: Service, caller: Caller, org: str, ref: str, instance: str) -> dict[str, Any]:
    """The instance's state, and once paired its phone number and WhatsApp profile name."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    with refusals_audited(service, caller, "whatsapp.status", org, ref, {"instance": instance}):
        api = evolution_of(service)
        name, state = current_state(api, org, ref, instance)
        paired = paired_from_row(api.fetch_instance(name) if state == OPEN else None)
    return {"state": state, "number": paired.number, "profile_name": paired.profile_name}


def send(service: Service, caller: Caller, org: str, ref: str, instance: str, number: str, text: str) -> dict[str, str]:
    """Send a text through a connected instance (admins and owners); the message's id. Rate limited per instance.
    The audit log records the instance and the message id, never the number or the text."""
    action = Action.SEND_WHATSAPP
    visible_project(service, caller, action, org, ref)
    detail: dict[str, Any] = {"instance": instance}
    with refusals_audited(service, caller, action.value, org, ref, detail):
        api = evolution_of(service)
        wait = service.send_allowed(f"{ref}/{instance}")
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                "too many messages through this instance; try again later",
                {"Retry-After": str(wait)},
            )
        name, state = current_state(api, org, ref, instance)
        if state != OPEN:
            raise ApiError(409, "not_connected", f"{instance} is not connected (state {state}): pair it first")
        message_id = api.send_text(name, number, text)
    audit_call(service, caller, action.value, "ok", org, ref, {**detail, "message_id": message_id})
    return {"message_id": message_id}
