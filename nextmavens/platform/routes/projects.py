"""Projects and their keys: GET /v1/projects, GET /v1/projects/{org}/{ref}, its keys, and key rotation."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from nextmavens.control.locks import LockTimeout
from nextmavens.control.store import backups as records
from nextmavens.engine.session import Engine, NotApplied
from nextmavens.keys import ProjectSecrets
from nextmavens.keysview import api_url, iso_time, project_access
from nextmavens.monitor.projecthealth import project_health
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, guard, refuse_missing, service_of
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.catalog import ProjectView
from nextmavens.platform.models import ERRORS, ErrorBody, Keys, ProjectDetail, ProjectList, Rotation
from nextmavens.platform.privileged import applier
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.service import Service

router = APIRouter(tags=["projects"], responses=ERRORS)
log = logging.getLogger("nextmavens.platform")

# What the keys endpoint returns of `keys show`'s view: never the JWT secret or a database password.
ANON_FIELDS = ("project", "api_url", "anon_key", "keys_expire_at")
EDGE_NOT_CONVERGED = (
    "the service stored the new keys but did not converge the edge (containers, Kong, tenants): until the next "
    "apply on the host (the reconcile timer's), the edge still accepts the old keys and refuses the new ones"
)


def not_applied(org: str, ref: str) -> ApiError:
    return ApiError(409, "not_applied", f"{org}/{ref} has no keys yet: it is declared but not applied")


def applied_secrets(service: Service, org: str, ref: str) -> ProjectSecrets:
    """The project's keys and passwords as the engine holds them; 409 when it was never applied (under `org`)."""
    with service.engine.secrets() as store:
        secrets = store.project_secrets(ref) if store.project_org(ref) == org else None
    if secrets is None:
        raise not_applied(org, ref)
    return secrets


def visible_project(service: Service, caller: Caller, action: Action, org: str, ref: str) -> ProjectView:
    guard(service, caller, action, org, ref)
    view = service.catalog().views.get((org, ref))
    if view is None:
        raise refuse_missing(service, caller, action, org, ref)
    return view


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
    service = service_of(request)
    view = visible_project(service, caller, Action.READ_PROJECT, org, ref)
    with service.pool.connection() as conn:
        backup = records.latest_complete(conn, f"{org}/{ref}")
    last_backup = None
    if backup is not None:
        last_backup = {
            "id": backup.id,
            "finished_at": backup.finished_at.isoformat() if backup.finished_at else None,
            "bytes": backup.total_bytes,
        }
    return {
        **view.as_json(),
        "api_url": api_url(ref, service.settings.api_domain),
        "last_good_backup": last_backup,
        "health": project_health(service.health_state(), org, ref, time.time()),
    }


@router.get("/v1/projects/{org}/{ref}/keys", response_model=Keys, response_model_exclude_none=True)
def get_keys(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The API URL and anon key; the service_role key too for admins and owners. Never the JWT secret."""
    service = service_of(request)
    visible_project(service, caller, Action.READ_ANON_KEY, org, ref)
    secrets = applied_secrets(service, org, ref)
    view = project_access(ref, secrets, service.settings.dsn, service.settings.api_domain)
    keys = {field: view[field] for field in ANON_FIELDS}
    if decide(caller.roles, caller.scope, Action.READ_SERVICE_KEY, org, ref) is Decision.ALLOW:
        keys["service_role_key"] = view["service_role_key"]
    return keys


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
    actor = f"{caller.member} (platform token {caller.token.id})"
    engine = service.engine_as(actor)
    try:
        keys = engine.rotate_keys(org, ref)
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
