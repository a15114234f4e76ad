"""Members' own access tokens and owners' view of their orgs' tokens: created, listed and revoked for GET/POST/DELETE
/v1/tokens and the dashboard's token page alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nextmavens.control.store import access
from nextmavens.control.store.access import TokenRecord
from nextmavens.platform.auth import ApiError, Caller, audit_call, not_found, scope_of
from nextmavens.platform.authz import Action, Decision, Scope, decide, within
from nextmavens.platform.issuing import IssueError, issue_token, revoke
from nextmavens.platform.service import Service
from nextmavens.platform.tokens import DEFAULT_LIFETIME, LifetimeError, parse_lifetime

CREATE, REVOKE = "tokens.create", "tokens.revoke"


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def create_token(
    service: Service,
    caller: Caller,
    name: str,
    org: str | None,
    project: str | None,
    read_only: bool,
    expires: str | None,
) -> dict[str, Any]:
    """A token for the calling member, holding no more than the caller's credential: its text is in the answer
    only. Naming neither org nor project keeps the caller's reach."""
    inherit = org is None and project is None
    org = caller.token.org if inherit or org is None else org
    project = caller.token.project if inherit else project
    wanted = Scope(org=org, project=project, read_only=read_only or caller.scope.read_only)

    def refuse(error: ApiError, result: str) -> ApiError:
        audit_call(service, caller, CREATE, result, org, project)
        return error

    if project is not None and org is None:
        raise refuse(ApiError(422, "invalid_request", "project: a project token names its org"), "invalid")
    if caller.scope.read_only:
        raise refuse(forbidden("a read-only token cannot create tokens"), "forbidden")
    if org is not None and decide(caller.roles, caller.scope, Action.READ_MEMBERS, org) is Decision.NOT_FOUND:
        raise refuse(not_found(f"org {org}"), "not_found")
    if project is not None and decide(caller.roles, caller.scope, Action.READ_PROJECT, org or "", project) is (
        Decision.NOT_FOUND
    ):
        raise refuse(not_found(f"project {org}/{project}"), "not_found")
    if not within(wanted, caller.scope):
        raise refuse(forbidden("a token can only create tokens of equal or narrower scope"), "forbidden")
    try:
        lifetime = parse_lifetime(expires) if expires is not None else DEFAULT_LIFETIME
    except LifetimeError as exc:
        raise refuse(ApiError(422, "invalid_request", f"expires: {exc}"), "invalid") from None
    now = datetime.now(UTC)
    expires_at = None if lifetime is None else now + lifetime
    ceiling = caller.token.expires_at
    if ceiling is not None and (expires_at is None or expires_at > ceiling):
        if expires is not None:
            raise refuse(forbidden("a token cannot outlive the token that creates it"), "forbidden")
        expires_at = ceiling
    try:
        with service.pool.connection() as conn:
            issued = issue_token(
                conn,
                member=caller.member,
                org=wanted.org,
                project=wanted.project,
                read_only=wanted.read_only,
                name=name,
                expires_at=expires_at,
                created_by=caller.member,
            )
    except IssueError as exc:
        raise refuse(ApiError(404, "not_found", str(exc)), "not_found") from None
    return {**issued.record.as_json(), "token": issued.token}


def owned_orgs(caller: Caller, action: Action) -> list[str]:
    """The orgs whose tokens the caller may see (READ_ORG_TOKENS) or manage (MANAGE_ORG_TOKENS)."""
    return [org for org in caller.roles if decide(caller.roles, caller.scope, action, org) is Decision.ALLOW]


def own(caller: Caller, token: TokenRecord) -> bool:
    """The caller's own token, within what the calling token reaches (a narrow token sees no wider sibling)."""
    return token.member == caller.member and (token.id == caller.token.id or within(scope_of(token), caller.scope))


def list_tokens(service: Service, caller: Caller) -> list[TokenRecord]:
    """The caller's own tokens; for owners, also every token that reaches into their orgs."""
    orgs = owned_orgs(caller, Action.READ_ORG_TOKENS)
    with service.pool.connection() as conn:
        found = access.tokens(conn, member=caller.member, orgs=orgs)
        # One lookup per member whose all-org tokens are listed, not one per token.
        wide = {t.member for t in found if t.org is None} if orgs else set()
        memberships = {member: access.member_roles(conn, member) for member in wide}
    visible = [
        t
        for t in found
        if own(caller, t) or (t.org in orgs if t.org else any(o in orgs for o in memberships.get(t.member, {})))
    ]
    return visible




def revoke_token(service: Service, caller: Caller, token_id: str) -> dict[str, Any]:
    """Revoke one of the caller's tokens, or (owners) any token reaching into their org."""
    with service.pool.connection() as conn:
        record = access.token(conn, token_id)
        reach = (
            [] if record is None else ([record.org] if record.org else list(access.member_roles(conn, record.member)))
        )
    org = record.org if record else None
    project = record.project if record else None
    if record is None or not (own(caller, record) or set(reach) & set(owned_orgs(caller, Action.READ_ORG_TOKENS))):
        audit_call(service, caller, REVOKE, "not_found", org, project, {"target": token_id})
        raise not_found(f"token {token_id}")
    managed = own(caller, record) or set(reach) & set(owned_orgs(caller, Action.MANAGE_ORG_TOKENS))
    if caller.scope.read_only or not managed:
        audit_call(service, caller, REVOKE, "forbidden", org, project, {"target": token_id})
        raise forbidden("your role or token does not allow revoking this token")
    with service.pool.connection() as conn:
        revoked_at = revoke(conn, record, caller.member)
    return {"id": record.id, "revoked_at": revoked_at.isoformat()}
