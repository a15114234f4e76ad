"""GET /v1/me: who the token speaks for, and what it reaches."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from nextmavens.platform.auth import Caller, authenticate
from nextmavens.platform.authz import visible_orgs
from nextmavens.platform.models import ERRORS, Me

router = APIRouter(tags=["identity"], responses=ERRORS)


@router.get("/v1/me", response_model=Me)
def me(caller: Annotated[Caller, Depends(authenticate)]) -> dict[str, Any]:
    """The member, their roles in the orgs this token reaches, and the token's scope."""
    token = caller.token.as_json()
    return {"member": caller.member, "orgs": visible_orgs(caller.roles, caller.scope), "token": token}
