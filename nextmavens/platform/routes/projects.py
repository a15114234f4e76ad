"""Projects and their keys: GET /v1/projects, GET /v1/projects/{org}/{ref}, its keys, and key rotation."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from nextmavens.control.locks import LockTimeout
from nextmavens.engine.session import Engine, NotApplied
from nextmavens.keysview import iso_time
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, service_of
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.models import ERRORS, ErrorBody, Keys, ProjectDetail, ProjectList, Rotation
from nextmavens.platform.privileged import applier
from nextmavens.platform.projectaccess import not_applied, project_detail, project_keys, visible_project
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.service import Service

router = APIRouter(tags=["projects"], responses=ERRORS)
log = logging.getLogger("nextmavens.platform")

EDGE_NOT_CONVERGED = (
    "the service stored the new keys but did not converge the edge (containers, Kong, tenants): until the next "
    "apply on the host (the reconcile timer's), the edge still accepts the old keys and refuses the new ones"
)


@router.get("/v1/projects", response_model=ProjectList)
def list_projects(request: Request, caller: Annotated[Caller, Depends(authenticate)]) -> Response:
    """The projects this token sees: declared in the manifests, applied, or both."""
    catalog = service_of(request).catalog()
    roles, scope = caller.roles, caller.scope
    seen = [key for key in catalog.views if decide(roles, scope, Action.READ_PROJECT, *key) is Decision.ALLOW]
    # Encoded with the catalog (the shape ProjectList publishes): nothing to validate or encode per request.
    return Response(catalog.listing(seen), media_type="application/json")


@router.get("/v1/projects/{org}/{ref}", response_model=ProjectDetail)
def get_project(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """State (declared and applied), API URL, last apply, health (as the health monitor last recorded it) and
    last good backup."""
    return project_detail(service_of(request), caller, org, ref)


@router.get("/v1/projects/{org}/{ref}/keys", response_model=Keys, response_model_exclude_none=True)
def get_keys(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The API URL and anon key; the service_role key too for admins and owners. Never the JWT secret."""
    return project_keys(service_of(request), caller, org, ref)


@router.post(
    "/v1/projects/{org}/{ref}/keys/rotate",
    response_model=Rotation,
    responses={409: {"model": ErrorBody, "description": "Not applied yet, or another apply is running"}},
)
def rotate_keys(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """A new JWT secret and keys, under the apply lock and recorded in the engine's runs as `keys rotate`, as
    `nextmavens keys rotate` without an edge config does; the old keys are recorded as revoked."""
    service = service_of(request)
    action = Action.ROTATE_KEYS
    visible_project(service, caller, action, org, ref)
    actor = f"{caller.member} ({caller.via})"
    engine = service.engine_as(actor)
    try:
        keys = engine.rotate_keys(org, ref)
        service.sql_logins.forget(org, ref)  # what was kept of its secrets is read again at the next use
    except NotApplied:
        refused = not_applied(org, ref)
        audit_call(service, caller, action.value, "failed", org, ref, {"error": refused.code})
        raise refused from None
    except LockTimeout:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": "busy"})
        raise ApiError(409, "busy", "another apply is running; try again when it ends") from None
    except Exception as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {"error": type(exc).__name__})
        raise
    converged = converge_edge(service, engine, actor)
    audit_call(service, caller, action.value, "ok", org, ref, {"issued_at": keys.issued_at, "edge": converged})
    return {
        "project": f"{org}/{ref}",
        "issued_at": keys.issued_at,
        "keys_expire_at": iso_time(keys.expires_at),
        "edge_converged": converged,
        "warning": None if converged else EDGE_NOT_CONVERGED,
    }


def converge_edge(service: Service, engine: Engine, actor: str) -> bool:
    """After a rotation: the host's privileged apply gives the edge the new keys (containers, Kong, tenants), as
    `keys rotate --edge-config` does. In-process there is no edge (False). The keys are stored either way, so a
    failure here is the answer's warning, not an error."""
    if not service.settings.privileged_argv:
        return False
    manifests = service.manifests.current()
    if manifests is None:
        return False
    try:
        edge = applier(engine, service.settings.privileged_argv, actor).apply(manifests).edge
    except Exception as exc:  # noqa: BLE001 - any failure leaves the stored keys valid; the timer's apply retries
        log.warning("the edge step after a key rotation failed (%s): the next apply converges it", type(exc).__name__)
        return False
    return edge is not None and edge.converged
