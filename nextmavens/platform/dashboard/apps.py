"""The project page's apps (issue 16): the apps its manifest declares, each one's active release (read from the
host when the page's script asks, so the page itself never waits for the host), and their logs in the page's live
tail (`app:<name>` in its service list; the stream is the API's, nextmavens/platform/projectlogs.py).
"""

from __future__ import annotations

import weakref
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from nextmavens.manifest.models import APP_NAME_PATTERN, REF_PATTERN
from nextmavens.platform.appreleases import RecentReleases, ReleasesUnavailable
from nextmavens.platform.auth import ApiError, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.dashboard.web import SECURITY_HEADERS, signed_in
from nextmavens.platform.routes.projects import visible_project
from nextmavens.platform.service import Service

router = APIRouter(include_in_schema=False)
AppName = Annotated[str, Path(pattern=APP_NAME_PATTERN, max_length=30)]
Slug = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
# Per service (tests run several in one process), per (org, ref, app), a few seconds: the host command runs as root.
RELEASES: weakref.WeakKeyDictionary[Service, RecentReleases] = weakref.WeakKeyDictionary()
# The live tail's services: the project's own, and an app's runtime log (`app:<name>`, the manifest's app name
# pattern, checked against the manifest by projectlogs.checked_target).
LOG_SERVICES = rf"^(rest|auth|storage|app:{APP_NAME_PATTERN.removeprefix('^').removesuffix('$')})$"


def declared_apps(service: Service, org: str, ref: str) -> list[dict[str, Any]]:
    """The project's apps as its current manifest declares them: name and domains."""
    manifests = service.manifests.current()
    loaded = manifests.by_key(f"{org}/{ref}") if manifests else None
    if loaded is None:
        return []
    return [{"name": app.name, "domains": list(app.domains)} for app in loaded.manifest.apps]


@router.get("/orgs/{org}/projects/{ref}/apps/{app}/release")
async def app_release(request: Request, org: Slug, ref: Slug, app: AppName) -> Response:
    """JSON for the page's script: `{"release": {...} | null}`, or `{"error"}` (404 an app not declared, 503 the
    host did not say)."""
    who = await run_in_threadpool(signed_in, request)
    service = service_of(request)

    def read() -> dict[str, object] | None:
        visible_project(service, who.caller, Action.READ_PROJECT, org, ref)
        if app not in {a["name"] for a in declared_apps(service, org, ref)}:
            raise ApiError(404, "no_such_app", f"{org}/{ref} declares no app {app!r}")
        return RELEASES.setdefault(service, RecentReleases()).active(service.settings, org, ref, app)

    try:
        found = await run_in_threadpool(read)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=SECURITY_HEADERS)
    except ReleasesUnavailable:
        return JSONResponse({"error": "the host did not say"}, status_code=503, headers=SECURITY_HEADERS)
    return JSONResponse({"release": found}, headers=SECURITY_HEADERS)
