"""Plain values shared by the edge tests: fixed manifests, deterministic secrets, platform settings."""

from __future__ import annotations

from typing import Any

from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.settings import EdgeSettings
from nextmavens.keys import LEGACY_KEY_LIFETIME_S, ProjectSecrets, issue_api_keys
from nextmavens.manifest.models import ProjectManifest
from nextmavens.naming import project_names
from nextmavens.upstream.facts import PINNED

ISSUED_AT = 1_700_000_000


# A test platform's shared services (MiB): what memory admission counts before any project.
SHARED_SERVICES_MB = {"postgres": 1024, "kong": 250, "realtime": 256, "supavisor": 256, "studio": 133}
SHARED_MB = sum(SHARED_SERVICES_MB.values())
BUDGET_MB = 8192


def settings_fields(**overrides: Any) -> dict[str, Any]:
    """Every EdgeSettings field the host data sets (they have no default), with a test platform's values."""
    values: dict[str, Any] = {
        "api_domain": "api.example.test",
        "studio_domain": "studio.example.test",
        "host_ipv4": "203.0.113.10",
        "acme_email": "",
        "memory_budget_mb": BUDGET_MB,
        "shared_services_mb": dict(SHARED_SERVICES_MB),
        "platform_network": "nextmavens",
        "db_host": "db",
        "kong_admin_url": "http://127.0.0.1:8001",
        "kong_proxy": "127.0.0.1:8000",
        "realtime_upstream": "realtime:4000",
        "realtime_api_url": "http://127.0.0.1:4000",
        "supavisor_api_url": "http://127.0.0.1:4001",
        "studio_upstream": "127.0.0.1:3000",
        "pooler_transaction_port": 6543,
        "client_max_body_size_mb": 50,
        "acme_webroot": "/var/www/acme",
        "default_server": True,
        "postgrest_image": PINNED["postgrest"],
        "gotrue_image": PINNED["gotrue"],
        "storage_image": PINNED["storage_api"],
    }
    values.update(overrides)
    return values


def settings(**overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {
        "supavisor_api_secret": "platform-supavisor-secret-0123456789abcdef",
        "realtime_api_secret": "platform-realtime-secret-0123456789abcdef",
        "pooler_manager_password": "pgbouncer-password-fixed",
        "realtime_db_password": "supabase-admin-password-fixed",
    }
    return EdgeSettings(**settings_fields(**{**values, **overrides}))


def secrets_for(ref: str) -> ProjectSecrets:
    jwt_secret = f"test-jwt-secret-for-{ref}-".ljust(48, "x")
    names = project_names(ref)
    return ProjectSecrets(
        jwt_secret=jwt_secret,
        # the golden files hold keys signed for the ten years every key had before lifetimes were configurable
        keys=issue_api_keys(jwt_secret, now=ISSUED_AT, expires_at=ISSUED_AT + LEGACY_KEY_LIFETIME_S),
        passwords={role: f"pw-{role}-fixed" for role in names.login_roles},
    )


def manifest(ref: str, **fields: Any) -> ProjectManifest:
    data: dict[str, Any] = {"ref": ref, "name": ref.title(), "auth": {"site_url": f"https://{ref}.app.test"}}
    data.update(fields)
    return ProjectManifest.model_validate(data)


def project(ref: str, **fields: Any) -> EdgeProject:
    return EdgeProject(manifest=manifest(ref, **fields), secrets=secrets_for(ref))


def sample_projects() -> list[EdgeProject]:
    return [
        project(
            "shop",
            domains=["api.shop.acme.test"],
            storage={"enabled": True},
            api={"rate_limits": {"anon": {"second": 20, "hour": 20000}, "service_role": {"second": 100}}},
            auth={"site_url": "https://shop.acme.test", "redirect_urls": ["https://shop.acme.test/cb"]},
        ),
        project("crm", domains=["crm.acme.test", "api.crm.acme.test"], database={"pooler": {"size": 5}}),
        project("helpdesk", state="suspended", api={"rate_limits": {"anon": {"minute": 300}}}),
        project("gone", state="absent"),
    ]
