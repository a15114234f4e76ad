"""SQL in a project's database for a caller: one statement (POST .../sql), and the catalog read the same way
(GET .../tables, GET .../extensions; GET .../types/typescript through postgres-meta, see typegen).
Read-only calls run as the project's read-only role in a READ ONLY transaction; writes as its owner role, for
admins and owners with a writing token (see sqlrun for every guard)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from nextmavens.files import read_secret_file
from nextmavens.naming import project_names
from nextmavens.platform.auth import ApiError, Caller, audit_call, authenticate, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.models import ERRORS, ErrorBody
from nextmavens.platform.projectaccess import applied_secrets, visible_project
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.routes.studio import meta_db_address
from nextmavens.platform.service import Service
from nextmavens.platform.sqlrun import SessionUnavailable, SqlLimits, SqlRefused, SqlResult
from nextmavens.platform.studiogate import role_connection
from nextmavens.platform.typegen import APPLICATION_NAME, OWN_SCHEMAS, TypesFailed, listable
from nextmavens.platform.typegen import typescript_types as generate

router = APIRouter(tags=["sql"], responses=ERRORS)

MAX_QUERY_CHARS = 100_000
REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Not applied (or applied before its read-only role), or suspended"},
    422: {
        "model": ErrorBody,
        "description": "The statement failed or was refused: multiple_statements, timeout, transaction_ended, "
        "copy_refused, empty, or sql_failed with the SQLSTATE and PostgreSQL's message",
    },
}


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="One SQL statement")
    read_only: bool = Field(True, description="As the read-only role, rolled back; false: as the owner, committed")
    max_rows: int | None = Field(None, ge=1, description="At most the service's row cap (1000 by default)")
    timeout_ms: int | None = Field(None, ge=100, description="At most the service's maximum (60 s by default)")


class SqlAnswer(BaseModel):
    columns: list[str]
    rows: list[list[Any]] = Field(description="Each row's values in column order, as JSON values")
    row_count: int
    truncated: bool = Field(description="More rows (or more than 1 MiB of them) than returned")
    max_rows: int
    timeout_ms: int


def sql_project(service: Service, caller: Caller, action: Action, org: str, ref: str) -> None:
    """Visible and allowed (404/403 as every route), and applied as active: a suspended project's roles cannot log
    in, so it is refused at once rather than after the pool's wait."""
    view = visible_project(service, caller, action, org, ref)
    if view.applied_state is None:
        raise ApiError(409, "not_applied", f"{org}/{ref} is declared but not applied yet")
    if view.applied_state != "active":
        raise ApiError(409, "unavailable", f"{org}/{ref} is {view.applied_state}: its database takes no sessions")


def role_password(service: Service, org: str, ref: str, role: str) -> str:
    passwords = service.sql_logins.passwords(org, ref, lambda: dict(applied_secrets(service, org, ref).passwords))
    password = passwords.get(role)
    if password is None:
        raise ApiError(
            409, "not_applied", f"{org}/{ref} has no {role} password yet: it must be applied (again) by this version"
        )
    return password


def run_sql(
    service: Service, org: str, ref: str, query: str, read_only: bool, limits: SqlLimits
) -> SqlResult:
    names = project_names(ref)
    role = names.readonly if read_only else names.owner
    password = role_password(service, org, ref, role)
    try:
        return service.sql_sessions.run(ref, role, password, query, read_only, limits)
    except SessionUnavailable:
        raise ApiError(
            409, "unavailable", f"the {'read-only' if read_only else 'owner'} role of {org}/{ref} cannot open a "
            "session in its database (suspended, restarting, or every session busy): try again later"
        ) from None


def sql_failure(refused: SqlRefused) -> ApiError:
    if refused.code in ("multiple_statements", "timeout", "transaction_ended", "copy_refused", "empty"):
        return ApiError(422, refused.code, refused.message)
    return ApiError(422, "sql_failed", f"{refused.code}: {refused.message}" if refused.code else refused.message)


@router.post("/v1/projects/{org}/{ref}/sql", response_model=SqlAnswer, responses=REFUSALS)
async def execute_sql(
    org: OrgSlug, ref: ProjectRef, body: SqlRequest, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """One statement, sent with the extended query protocol (a second statement is refused, not run). Read-only
    (the default): as the project's read-only role in a READ ONLY transaction, rolled back. `read_only: false`: as
    the project's owner role, committed (admins and owners, writing token). A statement timeout (10 s unless
    asked for less or more, up to the maximum) and a row cap (1000) bound it; `truncated` says rows were left out.
    Rows are returned as data, never interpreted."""
    service = service_of(request)
    return await run_in_threadpool(execute_blocking, service, caller, org, ref, body)


def execute_blocking(service: Service, caller: Caller, org: str, ref: str, body: SqlRequest) -> dict[str, Any]:
    settings = service.settings
    action = Action.READ_SQL if body.read_only else Action.WRITE_SQL
    sql_project(service, caller, action, org, ref)
    limits = SqlLimits(
        timeout_ms=min(body.timeout_ms or settings.sql_timeout_ms, settings.sql_max_timeout_ms),
        max_rows=min(body.max_rows or settings.sql_max_rows, settings.sql_max_rows),
    )
    detail: dict[str, Any] = {"chars": len(body.query)}  # never the SQL: it may hold data
    try:
        result = run_sql(service, org, ref, body.query, body.read_only, limits)
    except SqlRefused as refused:
        if not body.read_only:
            audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": refused.code})
        raise sql_failure(refused) from None
    except ApiError as exc:
        if not body.read_only:
            audit_call(service, caller, action.value, "failed", org, ref, {**detail, "error": exc.code})
        raise
    if not body.read_only:
        audit_call(service, caller, action.value, "ok", org, ref, detail)
    return {**result.as_json(), "max_rows": limits.max_rows, "timeout_ms": limits.timeout_ms}


# The project's own tables: those in schemas its read-only role may use (public and the manifest's schemas, never
# auth, storage or the platform's), each as one JSON row, so the catalog query is one statement like any other.
TABLES = """
SELECT json_build_object(
  'schema', n.nspname, 'name', c.relname,
  'kind', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
               WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END,
  'rls_enabled', c.relrowsecurity, 'rows_estimate', greatest(c.reltuples, 0)::bigint,
  'comment', obj_description(c.oid, 'pg_class'),
  'columns', CASE WHEN {verbose} THEN (SELECT coalesce(json_agg(json_build_object(
      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull,
      'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) END,
  'primary_key', CASE WHEN {verbose} THEN (SELECT json_agg(a.attname ORDER BY k.ord)
    FROM pg_constraint p CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum
    WHERE p.conrelid = c.oid AND p.contype = 'p') END,
  'foreign_keys', CASE WHEN {verbose} THEN (SELECT coalesce(json_agg(json_build_object(
      'name', f.conname, 'definition', pg_get_constraintdef(f.oid),
      'references', f.confrelid::regclass::text) ORDER BY f.conname), '[]')
    FROM pg_constraint f WHERE f.conrelid = c.oid AND f.contype = 'f') END)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND has_schema_privilege(n.oid, 'USAGE')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname
"""

EXTENSIONS = """
SELECT json_build_object('name', a.name, 'installed_version', a.installed_version,
  'default_version', a.default_version, 'schema', n.nspname, 'comment', a.comment)
FROM pg_available_extensions a
LEFT JOIN pg_extension e ON e.extname = a.name LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY a.installed_version IS NULL, a.name
"""

CATALOG_LIMITS = SqlLimits(timeout_ms=10_000, max_rows=100_000, max_bytes=32 * 1024 * 1024)


class TableList(BaseModel):
    project: str
    tables: list[dict[str, Any]] = Field(
        description="schema, name, kind, rls_enabled, rows_estimate, comment; with verbose also columns, "
        "primary_key, foreign_keys"
    )
    without_rls: list[str] = Field(description="schema.name of the tables whose row level security is off")


class ExtensionList(BaseModel):
    project: str
    extensions: list[dict[str, Any]] = Field(
        description="name, installed_version (null: not installed), default_version, schema, comment"
    )


def catalog_rows(service: Service, org: str, ref: str, query: str) -> list[Any]:
    try:
        result = run_sql(service, org, ref, query, True, CATALOG_LIMITS)
    except SqlRefused as refused:
        raise ApiError(409, "catalog_failed", f"the catalog could not be read: {refused.message}") from None
    return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in result.rows]


@router.get("/v1/projects/{org}/{ref}/tables", response_model=TableList, responses=REFUSALS)
async def list_tables(
    org: OrgSlug,
    ref: ProjectRef,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    verbose: Annotated[bool, Query(description="Add columns, primary and foreign keys")] = False,
) -> dict[str, Any]:
    """The project's own tables and views (its public and declared schemas), read as its read-only role."""
    service = service_of(request)

    def read() -> dict[str, Any]:
        sql_project(service, caller, Action.READ_SQL, org, ref)
        tables = catalog_rows(service, org, ref, TABLES.replace("{verbose}", "true" if verbose else "false"))
        if not verbose:
            for table in tables:
                for key in ("columns", "primary_key", "foreign_keys"):
                    table.pop(key, None)
        unprotected = [f"{t['schema']}.{t['name']}" for t in tables if t["kind"] == "table" and not t["rls_enabled"]]
        return {"project": f"{org}/{ref}", "tables": tables, "without_rls": unprotected}

    return await run_in_threadpool(read)


@router.get("/v1/projects/{org}/{ref}/extensions", response_model=ExtensionList, responses=REFUSALS)
async def list_extensions(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """The extensions the server offers, installed ones first with their schema and version."""
    service = service_of(request)

    def read() -> dict[str, Any]:
        sql_project(service, caller, Action.READ_SQL, org, ref)
        return {"project": f"{org}/{ref}", "extensions": catalog_rows(service, org, ref, EXTENSIONS)}

    return await run_in_threadpool(read)


class TypeScriptTypes(BaseModel):
    project: str
    schemas: list[str] = Field(description="The schemas typed: those the project's read-only role may read")
    types: str = Field(description="The TypeScript postgres-meta generated (supabase-js's `Database` type)")


TYPES_REFUSALS: dict[int | str, dict[str, Any]] = {
    **REFUSALS,
    429: {"model": ErrorBody, "description": "this project's types are being generated already (rate_limited)"},
    502: {"model": ErrorBody, "description": "postgres-meta refused or failed (postgres_meta_failed)"},
    503: {"model": ErrorBody, "description": "postgres-meta is not configured for this service (types_unavailable)"},
}


@router.get("/v1/projects/{org}/{ref}/types/typescript", response_model=TypeScriptTypes, responses=TYPES_REFUSALS)
async def typescript_types(
    org: OrgSlug, ref: ProjectRef, request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> dict[str, Any]:
    """TypeScript types of the project's own schemas (public and the manifest's), generated by the host's
    postgres-meta connected as the project's read-only role (a connection of its own per request)."""
    service = service_of(request)
    return await run_in_threadpool(types_blocking, service, caller, org, ref)


def types_blocking(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    settings = service.settings
    sql_project(service, caller, Action.READ_SQL, org, ref)
    if settings.postgres_meta_url is None or settings.studio_meta_key_file is None:
        raise ApiError(503, "types_unavailable", "postgres-meta is not configured for the platform service here")
    schemas = listable([row[0] for row in run_sql(service, org, ref, OWN_SCHEMAS, True, CATALOG_LIMITS).rows])
    role = project_names(ref).readonly
    password = role_password(service, org, ref, role)
    host, port = meta_db_address(service)
    crypto_key = read_secret_file(settings.studio_meta_key_file, "postgres-meta's CRYPTO_KEY file").strip()
    connection = role_connection(host, port, ref, role, password, APPLICATION_NAME)
    if not service.type_generations.take(ref):
        raise ApiError(429, "rate_limited", f"the types of {org}/{ref} are being generated: try again when that ends")
    try:
        types = generate(settings.postgres_meta_url, crypto_key, connection, schemas, secrets=[password])
    except TypesFailed as exc:
        raise ApiError(502, "postgres_meta_failed", exc.message) from None
    finally:
        service.type_generations.give_back(ref)
    return {"project": f"{org}/{ref}", "schemas": schemas, "types": types}
