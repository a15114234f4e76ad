"""A project as a caller may see it: the one place the /v1 routes and the dashboard read a project, its detail
and its keys from, each read authorized by auth.guard (authz.decide) and refusals audited."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from nextmavens.control.store import backups as records
from nextmavens.keys import ProjectSecrets
from nextmavens.keysview import api_url, project_access
from nextmavens.monitor.projecthealth import project_health
from nextmavens.platform.auth import ApiError, Caller, guard, refuse_missing
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.catalog import ProjectView
from nextmavens.platform.service import Service

# What the keys endpoint returns of `keys show`'s view: never the JWT secret or a database password.
ANON_FIELDS = ("project", "api_url", "anon_key", "keys_expire_at")
CONNECTION_FIELDS = ("database_url", "pooler_transaction_url", "pooler_session_url")
PASSWORD_PLACEHOLDER = "PASSWORD"


def not_applied(org: str, ref: str) -> ApiError:
    return ApiError(409, "not_applied", f"{org}/{ref} has no keys yet: it is declared but not applied")


def applied_secrets(service: Service, org: str, ref: str) -> ProjectSecrets:
    """The project's keys and passwords as the engine holds them; 409 when it was never applied (under `org`)."""
    with service.engine.secrets() as store:
        secrets = store.project_secrets(ref) if store.project_org(ref) == org else None
    if secrets is None:
        raise not_applied(org, ref)
    return secrets


def visible_project(service: Service, caller: Caller, action: Action, org: str, ref: str) -> ProjectView:
    guard(service, caller, action, org, ref)
    view = service.catalog().views.get((org, ref))
    if view is None:
        raise refuse_missing(service, caller, action, org, ref)
    return view


def project_detail(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    """State (declared and applied), API URL, last apply, health and last good backup."""
    view = visible_project(service, caller, Action.READ_PROJECT, org, ref)
    with service.pool.connection() as conn:
        backup = records.latest_complete(conn, f"{org}/{ref}")
    last_backup = None
    if backup is not None:
        last_backup = {
            "id": backup.id,
            "finished_at": backup.finished_at.isoformat() if backup.finished_at else None,
            "bytes": backup.total_bytes,
        }
    return {
        **view.as_json(),
        "api_url": api_url(ref, service.settings.api_domain),
        "last_good_backup": last_backup,
        "health": project_health(service.health_state(), org, ref, time.time()),
    }


def project_keys(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    """The API URL and anon key; the service_role key too when authz allows READ_SERVICE_KEY. Never the JWT
    secret."""
    visible_project(service, caller, Action.READ_ANON_KEY, org, ref)
    secrets = applied_secrets(service, org, ref)
    view = project_access(ref, secrets, service.settings.dsn, service.settings.api_domain)
    keys = {field: view[field] for field in ANON_FIELDS}
    if decide(caller.roles, caller.scope, Action.READ_SERVICE_KEY, org, ref) is Decision.ALLOW:
        keys["service_role_key"] = view["service_role_key"]
    return keys


def connection_strings(service: Service, caller: Caller, org: str, ref: str) -> dict[str, str]:
    """The project's connection strings with PASSWORD where the owner's password goes (readers of the anon key)."""
    visible_project(service, caller, Action.READ_ANON_KEY, org, ref)
    secrets = applied_secrets(service, org, ref)
    hidden = replace(secrets, passwords={role: PASSWORD_PLACEHOLDER for role in secrets.passwords})
    view = project_access(ref, hidden, service.settings.dsn, service.settings.api_domain)
    return {field: view[field] for field in CONNECTION_FIELDS}
