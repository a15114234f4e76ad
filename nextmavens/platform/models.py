"""The shapes of the API's answers, as the OpenAPI document publishes them for its clients (CLI, MCP, dashboard)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="not_found, forbidden, unauthenticated, invalid_request, rate_limited, ...")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "Missing, invalid, expired or revoked token"),
        (403, "Visible, but the role or the token does not allow it"),
        (404, "No such thing, or not visible to this token"),
        (422, "Invalid input: `field: message` for each problem"),
        (429, "Too many failed authentications from this address (see Retry-After)"),
    )
}


class Token(BaseModel):
    id: str
    member: str
    org: str | None = Field(description="null: every org of the member")
    project: str | None = Field(description="null: the whole org (or orgs)")
    read_only: bool
    name: str
    created_by: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class CreatedToken(Token):
    token: str = Field(description="The token itself: shown only in this answer")


class TokenList(BaseModel):
    tokens: list[Token]


class Revoked(BaseModel):
    id: str
    revoked_at: str


class Me(BaseModel):
    member: str
    orgs: dict[str, str] = Field(description="org -> role, for the orgs this token reaches")
    token: Token


class Project(BaseModel):
    org: str
    ref: str
    name: str
    declared_state: str | None = Field(description="The manifest's state; null when no manifest declares it")
    applied_state: str | None = Field(description="The state last applied; null when never applied")
    manifest_path: str | None
    last_applied_at: str | None
    last_apply_commit: str | None = Field(
        default=None, description="The manifest repository's commit it was last applied from; null when unknown"
    )


class ProjectList(BaseModel):
    projects: list[Project]


class BackupSummary(BaseModel):
    id: int
    finished_at: str | None
    bytes: int | None


class HealthCheck(BaseModel):
    name: str = Field(description="container:nm-<ref>-<service>-<n>, probe:project:<ref> or backup:<org>/<ref>")
    ok: bool
    detail: str


class ProjectHealth(BaseModel):
    state: str = Field(description="ok, failing, or unknown (the health monitor has no record of the project)")
    checked_at: str | None = Field(description="When the health monitor last ran; null: never")
    stale: bool = Field(description="The last run is older than three of the monitor's 5-minute periods")
    checks: list[HealthCheck]


class ProjectDetail(Project):
    api_url: str
    last_good_backup: BackupSummary | None
    health: ProjectHealth


class Keys(BaseModel):
    project: str
    api_url: str
    anon_key: str
    keys_expire_at: str
    service_role_key: str | None = Field(None, description="Only for admins and owners")


class Rotation(BaseModel):
    project: str
    issued_at: int
    keys_expire_at: str
    edge_converged: bool
    warning: str | None


class Member(BaseModel):
    email: str
    role: str


class Members(BaseModel):
    org: str
    members: list[Member]


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    org: str | None
    project: str | None
    result: str
    detail: dict[str, Any]


class AuditLog(BaseModel):
    org: str
    entries: list[AuditEntry]


class WhatsAppInstance(BaseModel):
    name: str = Field(description="The manifest's instance name")
    evolution_name: str = Field(description="Its name in the shared Evolution API")
    state: str = Field(description="open, connecting, close, refused; missing: apply has not created it (yet)")
    number: str = Field(description="The paired phone's number (digits), empty before pairing")
    webhook_url: str = Field(description="Where Evolution sends the instance's events")


class WhatsAppInstances(BaseModel):
    instances: list[WhatsAppInstance]


class WhatsAppConnect(BaseModel):
    code: str | None = Field(description="The QR code's text; null before Evolution has one, or once open")
    png_base64: str | None = Field(description="The same QR code as a PNG, base64")
    pairing_code: str | None = Field(description="With a number: the 8-character code to type on that phone")
    state: str


class WhatsAppStatus(BaseModel):
    state: str
    number: str = Field(description="The paired phone's number (digits), empty when not paired")
    profile_name: str


class WhatsAppSent(BaseModel):
    message_id: str
