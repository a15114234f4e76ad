"""GET /v1/me: who the token speaks for, and what it reaches; DELETE /v1/me/token: the token revokes itself."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.authz import visible_orgs
from nextmavens.platform.issuing import revoke
from nextmavens.platform.models import ERRORS, Me, Revoked

router = APIRouter(tags=["identity"], responses=ERRORS)


@router.get("/v1/me", response_model=Me)
def me(caller: Annotated[Caller, Depends(authenticate)]) -> dict[str, Any]:
    """The member, their roles in the orgs this token reaches, and the token's scope."""
    token = caller.token.as_json()
    return {"member": caller.member, "orgs": visible_orgs(caller.roles, caller.scope), "token": token}


@router.delete("/v1/me/token", response_model=Revoked)
def revoke_own_token(request: Request, caller: Annotated[Caller, Depends(authenticate)]) -> dict[str, Any]:
    """Revoke the token this request carries (`nextmavens logout`), whatever its scope: a read-only token may end
    itself too, since that gives nothing. Audited as every revocation (tokens.revoke). Later requests with it are
    401."""
    with service_of(request).pool.connection() as conn:
        revoked_at = revoke(conn, caller.token, caller.member)
    return {"id": caller.token.id, "revoked_at": revoked_at.isoformat()}
