"""An org's members (as last applied from its org.yaml) and its audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nextmavens.control.store import access, projects
from nextmavens.platform.auth import Caller, authenticate, guard, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.models import ERRORS, AuditLog, Members
from nextmavens.platform.routes import OrgSlug

router = APIRouter(tags=["orgs"], responses=ERRORS)


@router.get("/v1/orgs/{org}/members", response_model=Members)
def members(org: OrgSlug, request: Request, caller: Annotated[Caller, Depends(authenticate)]) -> dict[str, Any]:
    service = service_of(request)
    guard(service, caller, Action.READ_MEMBERS, org)
    with service.pool.connection() as conn:
        listed = projects.org_members(conn, org)
    return {"org": org, "members": [{"email": email, "role": role} for email, role in listed]}


@router.get("/v1/orgs/{org}/audit", response_model=AuditLog)
def audit_log(
    org: OrgSlug,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, description="only entries older than this id (the next page)")] = None,
) -> dict[str, Any]:
    """Writes and refused calls in the org, newest first (owners)."""
    service = service_of(request)
    guard(service, caller, Action.READ_AUDIT, org)
    with service.pool.connection() as conn:
        entries = access.audit_entries(conn, org, limit, before)
    return {"org": org, "entries": entries}
