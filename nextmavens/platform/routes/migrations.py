"""A project's migrations: GET lists the history in `supabase_migrations.schema_migrations`, POST applies
migrations as the project's owner role, each with its history row in one transaction (see migrationrun)."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.migrationplan import (
    NAME_PATTERN,
    VERSION_PATTERN,
    Migration,
    PlanRefused,
    check_version,
    plan_migrations,
)
from nextmavens.platform.migrationrun import (
    NotOwnerSession,
    OwnerLoginFailed,
    apply_plan,
    ensure_history,
    read_history,
    watchdog,
)
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.projectaccess import visible_project
from nextmavens.platform.projectmigrations import history_failed, migration_history, session_for, unavailable
from nextmavens.platform.routes import OrgSlug, ProjectRef

router = APIRouter(tags=["migrations"], responses=ERRORS)

# One run per project at a time (a session advisory lock in the project's own database; any role may take it).
RUN_LOCK_KEY = 7_242_016_400
CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "Not applied yet, the owner cannot log in (suspended), another run is going on, the history "
        "table cannot be read, or the "
        "request was refused (missing_versions, out_of_order, duplicate_version): nothing was applied",
    }
}


class MigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[
        str,
        Field(pattern=VERSION_PATTERN, description="YYYYMMDDHHMMSS (UTC), the file's prefix"),
        AfterValidator(check_version),
    ]
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The file name after `<version>_`, no .sql")] = ""
    sql: Annotated[str, Field(description="The file's text; the request's size limit bounds it")]


class ApplyMigrations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    migrations: Annotated[list[MigrationIn], Field(max_length=1000)]
    include_all: bool = Field(
        False, description="Apply versions older than the last applied one, and despite versions this list lacks"
    )


class MigrationRecord(BaseModel):
    version: str
    name: str


class MigrationHistory(BaseModel):
    project: str
    migrations: list[MigrationRecord]


class MigrationFailure(BaseModel):
    version: str
    statement: int = Field(description="1-based number of the failing statement; 0: none of them")
    sqlstate: str | None
    message: str = Field(description="PostgreSQL's message about the migration's own SQL")


class ApplyResult(BaseModel):
    project: str
    applied: list[MigrationRecord] = Field(description="Applied now, in order, each committed with its row")
    skipped: list[str] = Field(description="Versions already in the history")
    failed: MigrationFailure | None = Field(
        description="The migration that failed (rolled back with its row); later ones were not tried"
    )


@router.get("/v1/projects/{org}/{ref}/migrations", response_model=MigrationHistory, responses=CONFLICTS)
def list_migrations(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The versions recorded in the project's `supabase_migrations.schema_migrations`, oldest first."""
    return {"project": f"{org}/{ref}", "migrations": migration_history(service_of(request), caller, org, ref)}


@router.post("/v1/projects/{org}/{ref}/migrations", response_model=ApplyResult, responses=CONFLICTS)
def apply_migrations(
    org: OrgSlug,
    ref: ProjectRef,
    body: ApplyMigrations,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    """Apply the migrations the history lacks, in version order, as the project's owner role: each with its history
    row in one transaction; the first failure rolls back (with its row) and ends the run (200, `failed` set).
    Refused (409, nothing applied) when the history holds versions the request lacks or a pending version is older
    than the last applied one, unless `include_all`."""
    service = service_of(request)
    action = Action.APPLY_MIGRATIONS
    visible_project(service, caller, action, org, ref)
    local = [Migration(m.version, m.name, m.sql) for m in body.migrations]
    detail: dict[str, Any] = {"versions": [m.version for m in local][:100], "include_all": body.include_all}
    try:
        with session_for(service, org, ref) as conn, watchdog(conn, service.settings.migration_run_timeout_s):
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()
            if not locked or not locked[0]:
                raise ApiError(409, "busy", "another migration run is going on for this project; try again")
            try:
                plan = plan_migrations(local, [m.version for m in read_history(conn)], body.include_all)
                if plan.pending:
                    ensure_history(conn)
                outcome = apply_plan(conn, plan)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
    except PlanRefused as refused:
        audit_call(service, caller, action.value, "refused", org, ref, {**detail, "error": refused.code})
        raise ApiError(409, refused.code, refused.message) from None
    except (OwnerLoginFailed, NotOwnerSession):
        audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": "owner_login_failed"})
        raise unavailable(org, ref) from None
    except ApiError as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": exc.code})
        raise
    except psycopg.Error as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": "history_failed"})
        raise history_failed(exc) from None
    except Exception as exc:
        audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": type(exc).__name__})
        raise
    failed = outcome.failed
    detail["applied"] = [m.version for m in outcome.applied]
    if failed is not None:
        detail.update(failed=failed.version, sqlstate=failed.sqlstate)
    audit_call(service, caller, action.value, "ok" if failed is None else "failed", org, ref, detail)
    return {
        "project": f"{org}/{ref}",
        "applied": [{"version": m.version, "name": m.name} for m in outcome.applied],
        "skipped": plan.skipped,
        "failed": None if failed is None else vars(failed),
    }
