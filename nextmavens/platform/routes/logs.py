"""GET /v1/projects/{org}/{ref}/logs: a project's container log as server-sent events, bounded in time and size.

The service reads the log the way the host allows it: `privileged_argv + container-logs ...` (sudo runs that
one command as root, and it checks every argument again), or, with no prefix, `docker logs` in this process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from nextmavens.containerlogs import (
    LogsRefused,
    LogTarget,
    command_argv,
    docker_logs_argv,
    log_target,
    parse_since,
)
from nextmavens.dockerenv import docker_environment
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.logstream import Bounds, EventStream, start
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.routes.projects import not_applied, visible_project
from nextmavens.platform.service import Service

router = APIRouter(tags=["logs"], responses=ERRORS)
SERVICE_PATTERN = r"^(rest|auth|storage|app:[a-z][a-z0-9]*(-[a-z0-9]+)*)$"

STREAM = (
    "Server-sent events: one `data:` event per log line (docker's RFC 3339 timestamp first), comments while "
    'nothing arrives, and a last `end` event: `{"reason": "eof"|"max_seconds"|"max_bytes"|"max_lines", '
    '"exit_code": int|null}`'
)
LOG_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": STREAM},
    409: {"model": ErrorBody, "description": "The project is not applied (not_applied), or has no such service"},
    429: {"model": ErrorBody, "description": "This token already holds its limit of open log streams"},
    503: {"model": ErrorBody, "description": "The host cannot read container logs (no docker, no privilege)"},
}


def checked_target(
    service: Service, caller: Caller, org: str, ref: str, name: str, since: str | None
) -> tuple[LogTarget, str | None]:
    """The container to read and docker's `--since`, or the refusal (audited)."""
    action = Action.READ_LOGS
    view = visible_project(service, caller, action, org, ref)
    if since is not None:
        try:
            since = parse_since(since, datetime.now(UTC))
        except LogsRefused as exc:
            raise ApiError(422, "invalid_request", f"since: {exc}") from None
    manifests = service.manifests.current()
    declared = manifests.by_key(f"{org}/{ref}") if manifests else None
    applied = view.applied_state is not None
    try:
        target = log_target(org, ref, name, declared.manifest if declared else None, applied)
    except LogsRefused as exc:
        refused = ApiError(409, "no_such_service", str(exc)) if applied else not_applied(org, ref)
        audit_call(service, caller, action.value, "refused", org, ref, {"service": name, "error": refused.code})
        raise refused from None
    return target, since


@router.get("/v1/projects/{org}/{ref}/logs", response_class=Response, responses=LOG_ERRORS)
async def stream_logs(
    org: OrgSlug,
    ref: ProjectRef,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    service: Annotated[
        str,
        Query(
            pattern=SERVICE_PATTERN,
            max_length=34,
            description="The project's service (rest, auth, storage), or app:<name> (the app's active release)",
        ),
    ],
    since: Annotated[str | None, Query(max_length=40, description="10m, 2h, 1d or an RFC 3339 time")] = None,
    follow: Annotated[bool, Query(description="Keep streaming new lines (until the time bound)")] = False,
) -> Response:
    """The service's container log (stdout and stderr) with timestamps; the stream ends at the log's end (or,
    following, after the service's time bound) or at its byte or line bound, and the reading process with it."""
    running = service_of(request)
    settings = running.settings
    target, cutoff = await run_in_threadpool(checked_target, running, caller, org, ref, service, since)
    if settings.privileged_argv:
        argv = [*settings.privileged_argv, *command_argv(org, ref, service, cutoff, follow)]
    elif target.app is not None:  # its active release is in the host's state, which root's command reads
        raise ApiError(503, "logs_unavailable", "an app's log is read on the host, through its privileged command")
    else:
        argv = docker_logs_argv(target, cutoff, follow)
    slots = running.log_streams
    token = caller.token.id
    if not slots.take(token):
        raise ApiError(429, "too_many_streams", f"a token holds at most {slots.per_token} log streams at once")
    try:
        child = await start(argv, docker_environment())
    except OSError as exc:
        slots.give_back(token)
        await run_in_threadpool(
            audit_call, running, caller, Action.READ_LOGS.value, "failed", org, ref, {"error": type(exc).__name__}
        )
        raise ApiError(503, "logs_unavailable", "the host cannot read container logs now") from None
    bounds = Bounds(settings.logs_max_seconds, settings.logs_max_bytes, settings.logs_max_lines)
    return EventStream(child, bounds, lambda: slots.give_back(token))
