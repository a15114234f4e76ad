"""Project writes: POST /v1/projects creates a project, PATCH /v1/projects/{org}/{ref} suspends or resumes one.
Both go through the manifest repository (projectwrite: write, validate, apply, commit as the member)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from nextmavens.manifest.models import REF_PATTERN
from nextmavens.platform import projectwrite
from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.models import ERRORS, ErrorBody, Project
from nextmavens.platform.routes import OrgSlug, ProjectRef

router = APIRouter(tags=["projects"], responses=ERRORS)

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The project exists (create), another apply is running, the apply failed, the file has "
        "uncommitted edits, or the manifest repository is not set up (code no_manifest_repository)",
    },
}


class CreateProject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org: Annotated[str, Field(pattern=REF_PATTERN, max_length=63)]
    ref: Annotated[str, Field(max_length=63, description="Checked by the manifest model, as in a manifest")]
    name: Annotated[str, Field(max_length=200)]
    site_url: Annotated[str, Field(max_length=2000)]
    redirect_urls: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=50)] = []
    disable_signup: bool = False


class ChangeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "suspended"]


class ApplyOutcome(BaseModel):
    run: int
    changes: list[dict[str, str]]
    notices: list[dict[str, str]]


class WriteResult(BaseModel):
    project: Project
    commit: str | None = Field(description="The manifest repository's commit; null when nothing changed")
    apply: ApplyOutcome | None = Field(description="The engine's run; null when nothing changed")
    edge_converged: bool
    warning: str | None


@router.post("/v1/projects", status_code=201, response_model=WriteResult, responses=WRITE_ERRORS)
def create_project(
    body: CreateProject, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """Write `<org>/<ref>.yaml` from the request, validate it with the manifests, apply, commit as the member."""
    return projectwrite.create_project(
        service_of(request),
        caller,
        body.org,
        body.ref,
        body.name,
        body.site_url,
        body.redirect_urls,
        body.disable_signup,
    )


@router.patch("/v1/projects/{org}/{ref}", response_model=WriteResult, responses=WRITE_ERRORS)
def change_state(
    org: OrgSlug,
    ref: ProjectRef,
    body: ChangeState,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    """Suspend or resume a project: its manifest's `state`, applied and committed as the member."""
    return projectwrite.change_state(service_of(request), caller, org, ref, body.state)
