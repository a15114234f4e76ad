"""PUT /v1/orgs/{org}/members: an owner replaces the org's member list. The org.yaml goes through the manifest
repository like a project write (write, validate, apply, commit as the owner); the apply records the members in
the control database, which is what disables a removed member's tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from nextmavens.control.store import projects
from nextmavens.manifest.loader import ORG_FILE, ManifestSet
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, guard, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.manifestedit import (
    ORG_SCHEMA_HEADER,
    members_problems,
    org_values,
    render_document,
    with_members,
)
from nextmavens.platform.manifestrepo import Conflict
from nextmavens.platform.models import ERRORS, ErrorBody, Member
from nextmavens.platform.projectwrite import NotDeclared, apply_outcome, write_manifest
from nextmavens.platform.routes import OrgSlug
from nextmavens.platform.routes.projectwrites import ApplyOutcome

router = APIRouter(tags=["orgs"], responses=ERRORS)

MAX_MEMBERS = 500
MEMBER_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "Another apply is running, the apply failed, the org.yaml has uncommitted edits, or the "
        "manifest repository is not set up (code no_manifest_repository)",
    },
}


class MemberEntry(BaseModel):
    """One member as the request names it; the org model checks the values (after the role check, so a refusal
    is audited and a caller without the role learns nothing from it)."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(max_length=254)]
    role: Annotated[str, Field(max_length=20, description="owner, admin or developer")]


class MembersWritten(BaseModel):
    org: str
    members: list[Member] = Field(description="The members as now applied")
    commit: str | None = Field(description="The manifest repository's commit; null when nothing changed")
    apply: ApplyOutcome | None = Field(description="The engine's run; null when nothing changed")


@router.put("/v1/orgs/{org}/members", response_model=MembersWritten, responses=MEMBER_WRITE_ERRORS)
def replace_members(
    org: OrgSlug,
    body: Annotated[list[MemberEntry], Body(max_length=MAX_MEMBERS)],
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    """Replace the org's members with the list sent (owners): written to `<org>/org.yaml`, applied, committed as
    the owner. The org must keep at least one owner; a removed member's tokens stop working at once."""
    service = service_of(request)
    action = Action.MANAGE_MEMBERS
    guard(service, caller, action, org)
    members = [entry.model_dump() for entry in body]
    # The name is checked with the file's own values once read; the members can be refused before any I/O.
    problems = members_problems(with_members({"name": org}, members))
    if problems:
        audit_call(service, caller, action.value, "invalid", org, None, {"problems": len(problems)})
        raise ApiError(422, "invalid_request", "; ".join(problems))

    def render(current: ManifestSet, existing: str | None) -> str | None:
        declared = current.orgs.get(org)
        if existing is None or declared is None or declared.manifest is None:
            raise NotDeclared
        try:
            values = org_values(existing)
        except ValueError as exc:  # the loader accepted it, so this does not happen; refused all the same
            raise Conflict("manifests_invalid", f"{org}/{ORG_FILE}: {exc}") from None
        document = with_members(values, members)
        return None if document == values else render_document(document, ORG_SCHEMA_HEADER)

    written = write_manifest(service, caller, action, org, None, render, f"Set the members of {org} ({len(members)})")
    audit_call(
        service,
        caller,
        action.value,
        "ok" if written.commit else "unchanged",
        org,
        None,
        {"commit": written.commit, "members": len(members)},
    )
    with service.pool.connection() as conn:
        listed = projects.org_members(conn, org)
    return {
        "org": org,
        "members": [{"email": email, "role": role} for email, role in listed],
        "commit": written.commit,
        "apply": apply_outcome(written.applied)["apply"],
    }
