"""POST /v1/projects/{org}/{ref}/apps/{app}/deploys: an uploaded `git archive` of a commit, built and released on the
host, the build and release log streamed back as server-sent events.

The body (application/x-tar, at most `deploy_max_body_bytes`) is written to a 0600 file in a private folder, then the
host's own command builds it: `privileged_argv + deploy ORG/REF APP --archive FILE` (sudo runs that as root, and it
checks the project, the app and every archive entry again), or, with no prefix (tests, a developer's machine),
`python -m nextmavens.cli deploy ...` in a child process. Only an app whose `source` is `upload` takes uploads; the
others build from their declared source on the host. The file goes when the stream ends, however it ends. The
token's stream slot is taken before the body is read, so a token's parallel uploads are refused, not buffered.

`?preview=NAME` runs the build as a preview (`... --preview NAME`); DELETE .../apps/{app}/previews/{preview} runs
`deploy ORG/REF APP --remove-preview NAME` the same way and waits for it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from nextmavens.apps.releases import PREVIEW_NAME_MAX, PREVIEW_NAME_PATTERN
from nextmavens.manifest.models import APP_NAME_PATTERN
from nextmavens.platform.appreleases import host_argv, host_environment, run_host
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.logstream import Bounds, EventStream, start
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.routes.projects import visible_project
from nextmavens.platform.service import Service

router = APIRouter(tags=["deploys"], responses=ERRORS)
AppName = Annotated[str, PathParam(pattern=APP_NAME_PATTERN, max_length=30)]
PREVIEW_PATTERN = f"^{PREVIEW_NAME_PATTERN.pattern}$"
PreviewName = Annotated[str, PathParam(pattern=PREVIEW_PATTERN, max_length=PREVIEW_NAME_MAX)]
REMOVE_TIMEOUT_S = 120.0  # nginx -t and reload, removing a container and an image


class PreviewRemoved(BaseModel):
    app: str
    preview: str
    removed: bool
ARCHIVE_TYPES = ("application/x-tar", "application/octet-stream")
DEPLOY_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-sent events: one `data:` event per line of the build and release log, then `end`: "
        '`{"reason": "eof"|"max_seconds"|"max_bytes"|"max_lines", "exit_code": int|null}` (0: released)',
    },
    409: {"model": ErrorBody, "description": "No such app, or the app does not deploy by upload"},
    413: {"model": ErrorBody, "description": "The archive is larger than the service accepts"},
    415: {"model": ErrorBody, "description": "The body is not a tar archive (application/x-tar)"},
    429: {"model": ErrorBody, "description": "This token already holds its limit of open streams"},
    503: {"model": ErrorBody, "description": "The host cannot run deploys now"},
}


def checked_app(service: Service, caller: Caller, org: str, ref: str, app: str) -> None:
    action = Action.DEPLOY_APP
    visible_project(service, caller, action, org, ref)
    manifests = service.manifests.current()
    declared = manifests.by_key(f"{org}/{ref}") if manifests else None
    found = next((a for a in declared.manifest.apps if a.name == app), None) if declared else None
    problem = None
    if found is None:
        problem = ApiError(409, "no_such_app", f"{org}/{ref} declares no app {app!r} in its manifest")
    elif found.source != "upload":
        problem = ApiError(409, "not_upload", f"app {app!r} builds from its declared source on the host, not uploads")
    if problem is not None:
        audit_call(service, caller, action.value, "refused", org, ref, {"app": app, "error": problem.code})
        raise problem
    audit_call(service, caller, action.value, "ok", org, ref, {"app": app})


def deploy_argv(
    privileged: tuple[str, ...], org: str, ref: str, app: str, archive: Path, preview: str | None = None
) -> list[str]:
    words = ["deploy", f"{org}/{ref}", app, "--archive", str(archive)]
    words += ["--preview", preview] if preview is not None else []
    return host_argv(privileged, words)


@router.post("/v1/projects/{org}/{ref}/apps/{app}/deploys", response_class=Response, responses=DEPLOY_ERRORS)
async def create_deploy(
    org: OrgSlug,
    ref: ProjectRef,
    app: AppName,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    preview: Annotated[
        str | None,
        Query(
            pattern=PREVIEW_PATTERN,
            max_length=PREVIEW_NAME_MAX,
            description="Run it as this preview, at NAME.<app domain>",
        ),
    ] = None,
) -> Response:
    """Build the uploaded commit (`git archive` tar as the body) and release it (or run it as `preview`); the log
    streams as it goes. The release takes traffic only once healthy; a failed build or an unhealthy release changes
    nothing served."""
    running = service_of(request)
    settings = running.settings
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ARCHIVE_TYPES:
        raise ApiError(415, "unsupported", "send the archive as application/x-tar (the output of `git archive`)")
    await run_in_threadpool(checked_app, running, caller, org, ref, app)
    slots = running.log_streams
    token = caller.token.id
    # The slot before the body: a token's parallel uploads are refused before any of them is read into memory.
    if not slots.take(token):
        raise ApiError(429, "too_many_streams", f"a token holds at most {slots.per_token} streams at once")
    folder: Path | None = None

    def done() -> None:
        slots.give_back(token)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    try:
        body = await request.body()  # bounded by the Guard (deploy_max_body_bytes)
        if not body:
            raise ApiError(422, "invalid_request", "the body is empty: send a `git archive` tar")
        folder = Path(tempfile.mkdtemp(prefix="nextmavens-upload-"))  # 0700
        archive = folder / "source.tar"
        archive.touch(mode=0o600)
        archive.write_bytes(body)
        del body
        argv = deploy_argv(settings.privileged_argv, org, ref, app, archive, preview)
        child = await start(argv, host_environment(settings))
    except OSError:
        done()
        raise ApiError(503, "deploys_unavailable", "the host cannot run deploys now") from None
    except BaseException:
        done()
        raise
    bounds = Bounds(settings.deploy_max_seconds, settings.logs_max_bytes, settings.logs_max_lines)
    return EventStream(child, bounds, done)


REMOVE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such preview of the app"},
    409: {"model": ErrorBody, "description": "No such app, or the app does not deploy by upload"},
    502: {"model": ErrorBody, "description": "The host could not remove the preview"},
    503: {"model": ErrorBody, "description": "The host cannot run deploys now"},
}


@router.delete(
    "/v1/projects/{org}/{ref}/apps/{app}/previews/{preview}", response_model=PreviewRemoved, responses=REMOVE_ERRORS
)
async def delete_preview(
    org: OrgSlug,
    ref: ProjectRef,
    app: AppName,
    preview: PreviewName,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> PreviewRemoved:
    """Remove a preview: nginx stops serving NAME.<app domain>, then its container, image and secrets file go."""
    running = service_of(request)
    settings = running.settings
    await run_in_threadpool(checked_app, running, caller, org, ref, app)
    words = ["deploy", f"{org}/{ref}", app, "--remove-preview", preview]
    try:
        done = await run_in_threadpool(run_host, settings, words, REMOVE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        raise ApiError(503, "deploys_unavailable", "the host cannot run deploys now") from None
    if done.returncode != 0:
        if f"no preview {preview!r}" in done.stderr:
            raise ApiError(404, "no_such_preview", f"{org}/{ref} app {app!r} has no preview {preview!r}")
        raise ApiError(502, "remove_failed", f"the host could not remove preview {preview!r} (exit {done.returncode})")
    return PreviewRemoved(app=app, preview=preview, removed=True)
