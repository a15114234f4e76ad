"""POST /hooks/evolution/{org}/{ref}/{instance}: Evolution API's webhooks, stored in the project's database.

Not behind the platform's access tokens: Evolution signs each webhook with the instance's own secret
(hookauth.py). The answers follow Evolution's retries: 200 once the row is committed (or was already there),
503 and 429 when it should send again, 401 when it should not (every refusal alike).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from nextmavens.platform.hookreceiver import HookReceiver
from nextmavens.platform.models import ErrorBody

router = APIRouter(tags=["webhooks"])

# status -> (code, message): the same body for every refusal, whatever failed.
ANSWERS = {
    401: ("unauthenticated", "missing, invalid or expired webhook signature"),
    422: ("invalid_request", "the webhook's body cannot be stored"),
    429: ("rate_limited", "too many webhooks for this instance; try again later"),
    503: ("unavailable", "the project's database is unavailable; try again"),
}


def receiver_of(request: Request) -> HookReceiver:
    receiver: HookReceiver = request.app.state.hooks
    return receiver


@router.post(
    "/hooks/evolution/{org}/{ref}/{instance}",
    responses={
        200: {"description": '{"stored": true}, or false when the same webhook was stored before'},
        413: {"model": ErrorBody, "description": "The body is over the webhook size limit"},
        **{status: {"model": ErrorBody, "description": message} for status, (_, message) in ANSWERS.items()},
    },
)
async def evolution_webhook(org: str, ref: str, instance: str, request: Request) -> Response:
    """One webhook of instance `instance` (the manifest's name) of project org/ref, signed by Evolution with the
    instance's webhook secret (`Authorization: Bearer <HS256 JWT>`)."""
    raw = await request.body()
    answer = await receiver_of(request).receive(org, ref, instance, request.headers.get("authorization"), raw)
    if answer.status == 200:
        return JSONResponse({"stored": answer.stored})
    code, message = ANSWERS[answer.status]
    headers = {"WWW-Authenticate": "Bearer"} if answer.status == 401 else {}
    if answer.retry_after_s:
        headers["Retry-After"] = str(answer.retry_after_s)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=answer.status, headers=headers)
