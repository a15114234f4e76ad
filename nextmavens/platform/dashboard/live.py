"""Live state on the dashboard without reloading (server-sent events, as the log tail): the project list's rows and a
project page's state, health and containers, sent again whenever they change. Each stream reads what the pages read
(org_rows; project_detail's state and health, with its authorization), looks every LIVE_POLL_S (the service reads the
applied projects again at most once a second, the health monitor's file at each read), and ends after LIVE_STREAM_S;
the browser's EventSource then connects again (`retry`). Every LIVE_RECHECK_S the stream reads the session and the
member's roles anew and reads with those: a signed-out or revoked session, or a member removed from the org or
project, ends it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from nextmavens.monitor.projecthealth import project_health
from nextmavens.platform.auth import ApiError, Caller, service_of
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.dashboard.pages import Org, Ref, org_rows
from nextmavens.platform.dashboard.web import SECURITY_HEADERS, fragment, signed_in
from nextmavens.platform.logstream import event
from nextmavens.platform.projectaccess import visible_project
from nextmavens.platform.service import Service
from nextmavens.platform.sessioncheck import SessionMember, session_member

router = APIRouter(include_in_schema=False)

LIVE_POLL_S = 1.0
LIVE_STREAM_S = 300.0
LIVE_RECHECK_S = 5.0  # how soon a signed-out session or a removed member stops receiving
RETRY_MS = 3000


def _stream(request: Request, who: SessionMember, read: Callable[[SessionMember], dict[str, str]]) -> Response:
    """`read(who)` raises ApiError once `who` may no longer see what it reads."""

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        last: dict[str, str] | None = None
        member: SessionMember | None = who
        deadline = time.monotonic() + LIVE_STREAM_S
        checked = time.monotonic()
        while time.monotonic() < deadline and not await request.is_disconnected():
            if time.monotonic() - checked >= LIVE_RECHECK_S:
                member, checked = await run_in_threadpool(session_member, request), time.monotonic()
            if member is None:  # signed out, revoked, expired or no longer in any org
                return
            try:
                now = await run_in_threadpool(read, member)
            except ApiError:  # out of the member's sight (now): the next connection says so
                return
            if now != last:
                yield event(json.dumps(now))  # one line: JSON escapes the fragments' newlines
                last = now
            await asyncio.sleep(LIVE_POLL_S)

    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # nginx passes each on
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _refused(exc: ApiError) -> Response:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=SECURITY_HEADERS)


@router.get("/orgs/{org}/events")
async def org_events(request: Request, org: Org) -> Response:
    """The org's project rows (state, health, last apply, last good backup, the admin's buttons) when they change."""
    who = await run_in_threadpool(signed_in, request)

    def read(member: SessionMember) -> dict[str, str]:
        if decide(member.caller.roles, member.caller.scope, Action.READ_MEMBERS, org) is not Decision.ALLOW:
            raise ApiError(404, "not_found", f"no org {org}")
        return {"rows": str(org_rows(request, member, org))}

    if decide(who.caller.roles, who.caller.scope, Action.READ_MEMBERS, org) is not Decision.ALLOW:
        return _refused(ApiError(404, "not_found", f"no org {org}"))
    return _stream(request, who, read)


def live_detail(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    """What the live parts show of projectaccess.project_detail: the project's state and its health. Not its last
    good backup, which they do not show and which costs a control-database query, each second for each stream."""
    view = visible_project(service, caller, Action.READ_PROJECT, org, ref)  # ApiError once out of the caller's sight
    return {**view.as_json(), "health": project_health(service.health_state(), org, ref, time.time())}


def project_parts(detail: dict[str, Any], org: str, ref: str, can_suspend: bool, csrf: str) -> dict[str, str]:
    """The project page's live parts, rendered as the page renders them."""
    context = {"detail": detail, "org": org, "ref": ref, "can_suspend": can_suspend, "csrf": csrf}
    return {"state": fragment("project_state.html", **context), "health": fragment("project_health.html", **context)}


@router.get("/orgs/{org}/projects/{ref}/events")
async def project_events(request: Request, org: Org, ref: Ref) -> Response:
    """A project's state (applied, declared), health and containers when they change."""
    who = await run_in_threadpool(signed_in, request)
    service = service_of(request)
    try:
        await run_in_threadpool(live_detail, service, who.caller, org, ref)  # 404 for a project out of sight
    except ApiError as exc:
        return _refused(exc)

    def read(member: SessionMember) -> dict[str, str]:
        detail = live_detail(service, member.caller, org, ref)
        allowed = decide(member.caller.roles, member.caller.scope, Action.SUSPEND_PROJECT, org, ref)
        return project_parts(detail, org, ref, allowed is Decision.ALLOW, member.csrf)

    return _stream(request, who, read)
