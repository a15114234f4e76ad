"""GET /v1/projects/{org}/{ref}/logs: a project's container log as server-sent events, bounded in time and size.

The service reads the log the way the host allows it: `privileged_argv + container-logs ...` (sudo runs that
one command as root, and it checks every argument again), or, with no prefix, `docker logs` in this process."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.projectlogs import open_stream
from nextmavens.platform.routes import OrgSlug, ProjectRef

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
    return await open_stream(service_of(request), caller, org, ref, service, since, follow)
