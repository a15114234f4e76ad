"""Members' own access tokens, and owners' view of their orgs' tokens: /v1/tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from nextmavens.manifest.models import REF_PATTERN
from nextmavens.platform import tokenops
from nextmavens.platform.auth import (
    Caller,
    authenticate,
    service_of,
)
from nextmavens.platform.issuing import MAX_NAME_CHARS
from nextmavens.platform.models import ERRORS, CreatedToken, Revoked, TokenList

router = APIRouter(tags=["tokens"], responses=ERRORS)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=MAX_NAME_CHARS)
    org: str | None = Field(None, pattern=REF_PATTERN, max_length=63, description="default: the calling token's")
    project: str | None = Field(
        None,
        pattern=REF_PATTERN,
        max_length=63,
        description="a project ref in `org`; default (when neither org nor project is given): the calling token's",
    )
    read_only: bool = False
    expires: str | None = Field(
        None,
        max_length=20,
        description="<n>d, <n>h or never; default 90d, and never later than the calling token's own expiry",
    )


@router.post("/v1/tokens", status_code=201, response_model=CreatedToken)
def create_token(
    body: TokenCreate, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """A token for the calling member, holding no more than the calling token: the text is shown only here."""
    return tokenops.create_token(
        service_of(request), caller, body.name, body.org, body.project, body.read_only, body.expires
    )


@router.get("/v1/tokens", response_model=TokenList)
def list_tokens(request: Request, caller: Annotated[Caller, Depends(authenticate)]) -> dict[str, Any]:
    """The caller's own tokens; for owners, also every token that reaches into their orgs. Never token text."""
    return {"tokens": [t.as_json() for t in tokenops.list_tokens(service_of(request), caller)]}


@router.delete("/v1/tokens/{token_id}", response_model=Revoked)
def revoke_token(
    token_id: Annotated[str, Path(max_length=40)], request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """Revoke one of the caller's tokens, or (owners) any token reaching into their org."""
    return tokenops.revoke_token(service_of(request), caller, token_id)
