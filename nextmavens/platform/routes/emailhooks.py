"""Email's webhooks (platform/emailhooks.py): `POST /hooks/resend`, Resend's delivery reports signed by Svix, and
`POST /hooks/email/inbound`, the inbound mail worker's messages signed with the shared secret (and
`POST /hooks/email/inbound/attachment`, an attachment too large to travel with its message). Not behind access
tokens. 200 once stored (or stored before), 401 for any bad signature, 404 for a recipient no project lists (the
worker rejects that mail) or when the service has no secret for them, 422 for a body that cannot be stored, 503 when
the secret file cannot be read or the database is unavailable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from nextmavens.email import inboundauth
from nextmavens.platform.emailhooks import ATTACHMENT_PATH, EmailHooks, HookAnswer
from nextmavens.platform.models import ErrorBody

router = APIRouter(tags=["webhooks"])

ANSWERS = {
    401: ("unauthenticated", "missing, invalid or expired webhook signature"),
    404: ("not_found", "no project receives mail at this address"),
    422: ("invalid_request", "the webhook's body cannot be stored"),
    503: ("unavailable", "email webhooks are not available now; try again"),
}
NOT_CONFIGURED = ("not_found", "this service receives no such webhooks (its secret file is not configured)")
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": '{"stored": true}, or false when it was stored before (or concerns no project)'},
    **{status: {"model": ErrorBody, "description": message} for status, (_, message) in ANSWERS.items()},
    404: {"model": ErrorBody, "description": "No project receives mail at this address, or no secret is configured"},
}


def hooks_of(request: Request) -> EmailHooks:
    hooks: EmailHooks = request.app.state.email_hooks
    return hooks


def _answer(answer: HookAnswer) -> Response:
    if answer.status == 200:
        return JSONResponse({"stored": answer.stored})
    code, message = ANSWERS[answer.status] if answer.configured else NOT_CONFIGURED
    headers = {"Retry-After": str(answer.retry_after_s)} if answer.retry_after_s else {}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=answer.status, headers=headers)


@router.post("/hooks/resend", responses=RESPONSES)
async def resend_webhook(request: Request) -> Response:
    """One of Resend's webhooks (email.sent, .delivered, .delivery_delayed, .bounced, .complained, ...), signed by
    Svix (svix-id, svix-timestamp, svix-signature)."""
    raw = await request.body()
    headers = {name: request.headers.get(name) or "" for name in ("svix-id", "svix-timestamp", "svix-signature")}
    return _answer(await hooks_of(request).resend(headers, raw))


@router.post("/hooks/email/inbound", responses=RESPONSES)
async def inbound_email(request: Request) -> Response:
    """One message the inbound mail worker received, parsed, signed `x-nextmavens-signature: t=<ts>,v1=<hex>`."""
    return await _from_worker(request, "inbound email", hooks_of(request).inbound)


@router.post(ATTACHMENT_PATH, responses=RESPONSES)
async def inbound_attachment(request: Request) -> Response:
    """One attachment of a stored message, too large to travel with it (the worker posts it on its own, signed the
    same way): uploaded to Cloudinary once its content matches the stored description, and its URL recorded. Its
    body limit is the attachment's own (platform/app.py, which refuses a larger Content-Length unread); a missing,
    malformed or stale signature header is refused before the body is read."""
    return await _from_worker(request, "inbound attachment", hooks_of(request).attachment)


async def _from_worker(
    request: Request, what: str, handle: Callable[[str | None, bytes], Awaitable[HookAnswer]]
) -> Response:
    """The inbound mail worker's signed post: refused before its body is read when the signature header alone
    cannot pass, else `handle(header, body)`'s answer."""
    header = request.headers.get(inboundauth.HEADER)
    early = hooks_of(request).early_refusal(header, what)
    if early is not None:
        return _answer(early)
    return _answer(await handle(header, await request.body()))
