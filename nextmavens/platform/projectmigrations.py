"""A project's migration history as its owner role reads it, and the owner's session for applying: shared by
/v1/projects/{org}/{ref}/migrations and the dashboard's project page."""

from __future__ import annotations

from typing import Any

import psycopg

from nextmavens.naming import project_names
from nextmavens.platform.auth import ApiError, Caller
from nextmavens.platform.authz import Action
from nextmavens.platform.migrationrun import (
    HISTORY_TABLE,
    NotOwnerSession,
    OwnerLoginFailed,
    owner_session,
    read_history,
)
from nextmavens.platform.projectaccess import applied_secrets, visible_project
from nextmavens.platform.service import Service


def session_for(service: Service, org: str, ref: str) -> Any:
    """A session logged in as the project's owner (409 when it cannot be had)."""
    secrets = applied_secrets(service, org, ref)
    password = secrets.passwords.get(project_names(ref).owner)
    if password is None:
        raise ApiError(409, "not_applied", f"{org}/{ref} has no owner password yet: apply it first")
    return owner_session(service.settings.dsn, ref, password, service.settings.migration_statement_timeout_ms)


def unavailable(org: str, ref: str) -> ApiError:
    return ApiError(
        409, "owner_login_failed", f"the owner role of {org}/{ref} cannot log in to its database (is it suspended?)"
    )


def history_failed(exc: psycopg.Error) -> ApiError:
    """The history table could not be read or created (the project's own table: its owner may have changed it)."""
    reason = exc.diag.message_primary or type(exc).__name__
    return ApiError(409, "history_failed", f"{HISTORY_TABLE} cannot be read or created: {reason}")


def migration_history(service: Service, caller: Caller, org: str, ref: str) -> list[dict[str, str]]:
    """The versions recorded in the project's `supabase_migrations.schema_migrations`, oldest first."""
    visible_project(service, caller, Action.READ_MIGRATIONS, org, ref)
    try:
        with session_for(service, org, ref) as conn:
            history = read_history(conn)
    except (OwnerLoginFailed, NotOwnerSession):
        raise unavailable(org, ref) from None
    except psycopg.Error as exc:
        raise history_failed(exc) from None
    return [{"version": m.version, "name": m.name} for m in history]
