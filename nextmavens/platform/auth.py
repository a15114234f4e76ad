"""The caller of a request (its bearer token, checked against the control database), the one guard every route
calls before acting, and the audit rows of writes and refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from nextmavens.control.store import access
from nextmavens.control.store.access import TokenRecord
from nextmavens.platform.authz import Action, Decision, Scope, decide, visible_orgs
from nextmavens.platform.service import Service
from nextmavens.platform.tokens import looks_like_token, token_hash

UNAUTHENTICATED = "missing, invalid, expired or revoked access token"
ANONYMOUS = "anonymous"


class ApiError(Exception):
    """An answer other than success: rendered as {"error": {"code", "message"}}. Messages hold no secret."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what}")


@dataclass(frozen=True)
class Caller:
    """Who acts: a member through an access token, or (kind "session") through a dashboard session, whose record
    is a token of the member's full reach that lives as long as the session."""

    token: TokenRecord
    roles: dict[str, str]  # org -> role, as last applied
    address: str
    kind: str = "token"  # "token" or "session": the key of the credential's id in audit rows

    @property
    def member(self) -> str:
        return self.token.member

    @property
    def via(self) -> str:
        """The credential in words, for engine runs and commit messages."""
        return f"platform token {self.token.id}" if self.kind == "token" else f"dashboard session {self.token.id}"

    @property
    def scope(self) -> Scope:
        return scope_of(self.token)


def scope_of(token: TokenRecord) -> Scope:
    return Scope(org=token.org, project=token.project, read_only=token.read_only)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(request: Request) -> Caller:
    """The request's caller, or 401 (audited; counted against the client address) or 429."""
    service = service_of(request)
    address = client_address(request)
    wait = service.retry_after(address)
    if wait:
        raise ApiError(
            429, "rate_limited", "too many failed authentications; try again later", {"Retry-After": str(wait)}
        )
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    reason = None
    found = None
    if scheme.lower() != "bearer" or not presented:
        reason = "missing"
    elif not looks_like_token(presented):
        reason = "malformed"
    else:
        with service.pool.connection() as conn:
            found = access.token_by_hash(conn, token_hash(presented))
        if found is None:
            reason = "unknown"
        else:
            record, roles, now = found
            if record.revoked_at is not None:
                reason = "revoked"
            elif record.expires_at is not None and record.expires_at <= now:
                reason = "expired"
            elif not visible_orgs(roles, scope_of(record)):
                reason = "not_a_member"  # removed from every org the token reaches
    if reason is not None or found is None:
        service.auth_failed(address)
        detail: dict[str, Any] = {"reason": reason, "client": address, "route": request.url.path[:200]}
        if found is not None:
            detail["token"] = found[0].id
        actor = ANONYMOUS if found is None else found[0].member
        with service.pool.connection() as conn:
            access.write_audit(conn, actor, "authenticate", "unauthenticated", detail=detail)
        raise ApiError(401, "unauthenticated", UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})
    record, roles, _ = found
    return Caller(record, roles, address)


def audit_call(
    service: Service,
    caller: Caller,
    action: str,
    result: str,
    org: str | None = None,
    project: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row for a call: the member, what, where, the result, and the token used (its id)."""
    with service.pool.connection() as conn:
        access.write_audit(
            conn, caller.member, action, result, org, project, {caller.kind: caller.token.id, **(detail or {})}
        )


def guard(service: Service, caller: Caller, action: Action, org: str, project: str | None = None) -> None:
    """Allow `action`, or refuse it with 404 (invisible) or 403, audited."""
    decision = decide(caller.roles, caller.scope, action, org, project)
    if decision is Decision.ALLOW:
        return
    audit_call(service, caller, action.value, decision.value, org, project)
    if decision is Decision.NOT_FOUND:
        raise not_found(f"project {org}/{project}" if project else f"org {org}")
    raise ApiError(403, "forbidden", f"your role or token does not allow {action.value} here")


def refuse_missing(service: Service, caller: Caller, action: Action, org: str, project: str | None = None) -> ApiError:
    """A visible org where the project is not there: refused and audited like an invisible one, same answer."""
    audit_call(service, caller, action.value, "not_found", org, project)
    return not_found(f"project {org}/{project}" if project else f"org {org}")
