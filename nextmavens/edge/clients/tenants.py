"""Supavisor and Realtime tenants, one per project: read, compare, write only differences.

Both APIs (reference sections 5 and 6) take `PUT /api/tenants/<external_id>` with `{"tenant": {...}}` as
create-or-update and answer `GET` with `{"data": {...}}` or 404; both authorise an HS256 bearer signed
with a platform-only secret (never a project's JWT secret).

Neither API returns secrets: Supavisor's tenant view omits user passwords; Realtime's drops `db_password`,
returns its other connection settings encrypted, and never returns `jwt_secret`. So:
- Realtime: the tenant `name` carries a keyed digest of the whole desired body (HMAC with the platform
  secret, so it reveals nothing); any change, secrets included, changes the digest and triggers a PUT.
- Supavisor: the plain fields are compared; the manager's password is platform-wide and is pushed again
  with `force=True` after it is rotated. A suspended or removed project's Supavisor tenant is deleted (its
  pooled logins stop; its database is untouched and the tenant is re-created on reactivation). Its Realtime
  tenant is kept: Kong already answers 503 on its host, and deleting it would drop its replication state.

Desired bodies are pure functions of (settings, manifest, secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from nextmavens.edge.clients.http import AdminApiError, check_internal, platform_token, request_json, scrub
from nextmavens.edge.settings import EdgeSettings
from nextmavens.keys import ProjectSecrets
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import POOLER_ROLE, project_names

AUTH_QUERY = "SELECT * FROM pgbouncer.get_auth($1)"
REALTIME_EXTENSION = "postgres_cdc_rls"
REALTIME_MAX_CONCURRENT_USERS = 200


@dataclass(frozen=True)
class TenantOutcome:
    service: str
    ref: str
    action: str  # "created" | "updated" | "unchanged" | "removed"
    differences: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- Supavisor


def desired_supavisor_tenant(settings: EdgeSettings, manifest: ProjectManifest) -> dict[str, Any]:
    names = project_names(manifest.ref)
    pooler = manifest.database.pooler
    return {
        "db_host": settings.db_host,
        "db_port": settings.db_port,
        "db_database": names.database,
        "require_user": False,
        "auth_query": AUTH_QUERY,
        "default_pool_size": pooler.size,
        "users": [
            {
                "db_user": POOLER_ROLE,
                "db_password": settings.pooler_manager_password.get_secret_value(),
                "mode_type": pooler.mode,
                "pool_size": pooler.size,
                "is_manager": True,
            }
        ],
    }


SUPAVISOR_COMPARED = ("db_host", "db_port", "db_database", "require_user", "auth_query", "default_pool_size")
SUPAVISOR_USER_COMPARED = ("db_user", "mode_type", "pool_size", "is_manager")


def supavisor_differences(desired: dict[str, Any], observed: dict[str, Any]) -> list[str]:
    diffs = [
        f"{key}: {observed.get(key)!r} -> {desired[key]!r}"
        for key in SUPAVISOR_COMPARED
        if observed.get(key) != desired[key]
    ]

    def users(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        picked = [{k: u.get(k) for k in SUPAVISOR_USER_COMPARED} for u in items]
        return sorted(picked, key=lambda u: str(u["db_user"]))

    if users(observed.get("users") or []) != users(desired["users"]):
        diffs.append("users changed")
    return diffs


# ---------------------------------------------------------------- Realtime


def desired_realtime_tenant(
    settings: EdgeSettings, manifest: ProjectManifest, secrets: ProjectSecrets
) -> dict[str, Any]:
    names = project_names(manifest.ref)
    body: dict[str, Any] = {
        "external_id": manifest.ref,
        "jwt_secret": secrets.jwt_secret,
        "max_concurrent_users": REALTIME_MAX_CONCURRENT_USERS,
        "extensions": [
            {
                "type": REALTIME_EXTENSION,
                "settings": {
                    "db_host": settings.db_host,
                    "db_port": str(settings.db_port),
                    "db_name": names.database,
                    "db_user": settings.realtime_db_user,
                    "db_password": settings.realtime_db_password.get_secret_value(),
                    "region": settings.realtime_region,
                    "poll_interval_ms": 100,
                    "poll_max_record_bytes": 1048576,
                    "publication": "supabase_realtime",
                    "slot_name": names.realtime_slot,
                    "ssl_enforced": False,
                },
            }
        ],
    }
    digest = hmac.new(
        settings.realtime_api_secret.get_secret_value().encode(),
        json.dumps(body, sort_keys=True).encode(),
        hashlib.sha256,
    ).hexdigest()[:20]
    body["name"] = f"{manifest.ref} nm:{digest}"
    return body


def realtime_differences(desired: dict[str, Any], observed: dict[str, Any]) -> list[str]:
    diffs = []
    if observed.get("name") != desired["name"]:
        diffs.append("configuration digest changed")
    if observed.get("max_concurrent_users") != desired["max_concurrent_users"]:
        diffs.append("max_concurrent_users changed")
    want = desired["extensions"][0]
    have = next((e for e in observed.get("extensions") or [] if e.get("type") == want["type"]), None)
    if have is None:
        diffs.append(f"extension {want['type']} missing")
    else:
        for key in ("slot_name", "publication", "region"):
            if (have.get("settings") or {}).get(key) != want["settings"][key]:
                diffs.append(f"extension setting {key} changed")
    return diffs


# ---------------------------------------------------------------- the clients


@dataclass
class _TenantApi:
    base_url: str
    secret: str
    timeout: float = 10.0
    service: str = ""

    def __post_init__(self) -> None:
        self.base_url = check_internal(self.base_url)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {platform_token(self.secret)}"}

    def get(self, ref: str) -> dict[str, Any] | None:
        status, body = request_json(
            "GET", f"{self.base_url}/api/tenants/{ref}", headers=self._headers(), timeout=self.timeout
        )
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise AdminApiError(f"{self.service}: GET tenant {ref} answered {status}", status)
        return dict(body["data"])

    def put(self, ref: str, tenant: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
        status, body = request_json(
            "PUT",
            f"{self.base_url}/api/tenants/{ref}",
            {"tenant": tenant},
            headers=self._headers(),
            timeout=self.timeout,
            secrets=[self.secret, *secrets],
        )
        if status not in (200, 201):
            detail = scrub(json.dumps(body, sort_keys=True), [self.secret, *secrets]) if body else ""
            raise AdminApiError(f"{self.service}: PUT tenant {ref} answered {status}: {detail}", status)
        return dict((body or {}).get("data") or {})

    def delete(self, ref: str) -> bool:
        status, _ = request_json(
            "DELETE", f"{self.base_url}/api/tenants/{ref}", headers=self._headers(), timeout=self.timeout
        )
        if status not in (200, 204, 404):
            raise AdminApiError(f"{self.service}: DELETE tenant {ref} answered {status}", status)
        return status != 404


class SupavisorTenants(_TenantApi):
    def __init__(self, settings: EdgeSettings, timeout: float = 10.0) -> None:
        super().__init__(
            settings.supavisor_api_url, settings.supavisor_api_secret.get_secret_value(), timeout, "supavisor"
        )
        self.settings = settings

    def ensure(self, manifest: ProjectManifest, force: bool = False) -> TenantOutcome:
        ref = manifest.ref
        desired = desired_supavisor_tenant(self.settings, manifest)
        observed = self.get(ref)
        secrets = [self.settings.pooler_manager_password.get_secret_value()]
        if observed is None:
            self.put(ref, desired, secrets)
            return TenantOutcome("supavisor", ref, "created")
        diffs = supavisor_differences(desired, observed)
        if force:
            diffs.append("forced (passwords are not readable back)")
        if not diffs:
            return TenantOutcome("supavisor", ref, "unchanged")
        self.put(ref, desired, secrets)
        return TenantOutcome("supavisor", ref, "updated", diffs)

    def ensure_absent(self, ref: str) -> TenantOutcome:
        """Suspended or removed project: no pooled logins. Only the tenant goes; the database stays."""
        if self.get(ref) is None:
            return TenantOutcome("supavisor", ref, "unchanged")
        self.delete(ref)
        return TenantOutcome("supavisor", ref, "removed")


class RealtimeTenants(_TenantApi):
    def __init__(self, settings: EdgeSettings, timeout: float = 10.0) -> None:
        super().__init__(
            settings.realtime_api_url, settings.realtime_api_secret.get_secret_value(), timeout, "realtime"
        )
        self.settings = settings

    def ensure(self, manifest: ProjectManifest, secrets: ProjectSecrets) -> TenantOutcome:
        ref = manifest.ref
        desired = desired_realtime_tenant(self.settings, manifest, secrets)
        observed = self.get(ref)
        hidden = [secrets.jwt_secret, self.settings.realtime_db_password.get_secret_value()]
        if observed is None:
            self.put(ref, desired, hidden)
            return TenantOutcome("realtime", ref, "created")
        diffs = realtime_differences(desired, observed)
        if not diffs:
            return TenantOutcome("realtime", ref, "unchanged")
        self.put(ref, desired, hidden)
        return TenantOutcome("realtime", ref, "updated", diffs)
