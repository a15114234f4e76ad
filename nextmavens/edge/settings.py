"""Platform settings the edge needs, as one plain value.

`nextmavens apply --edge-config` builds this from the settings file the deploy renders from group data
(nextmavens/host/edgeconfig.py) and the 0600 files holding the platform-only secrets. Every knob has its
default here, next to its meaning. Secrets are `SecretStr`, so printing the settings never shows them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from nextmavens.manifest.models import check_domain

# Footprints in MiB, measured with docker stats (DESIGN.md section 4; reference section 8).
POSTGREST_MB = 120
GOTRUE_MB = 34
STORAGE_MB = 125
KONG_WORKER_MB = 100

DEFAULT_SHARED_SERVICES_MB: dict[str, int] = {
    "postgres": 1024,  # shared_buffers + per-connection memory for all project databases
    "kong": 2 * KONG_WORKER_MB + 50,  # 2 workers + master
    "realtime": 256,
    "supavisor": 256,
    "studio": 133,
    "postgres-meta": 192,  # the real 0.91.6 on Node 20: 126 MiB RSS after a few requests (measured), + headroom
    "nginx": 32,
    "evolution-api": 300,
    "redis": 64,
    "os-and-docker": 600,
}


class EdgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Names
    api_domain: str = Field(description="Projects answer at <ref>.<api_domain>")
    studio_domain: str = Field(description="Operator-only Studio, behind basic auth")
    host_ipv4: str = Field(description="Public address every served name must resolve to (DNS check)")

    # Memory admission
    memory_budget_mb: Annotated[int, Field(ge=512)] = 8192
    shared_services_mb: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SHARED_SERVICES_MB))

    # Internal addresses (host:port on the platform network, as Kong and the services see them)
    platform_network: str = "nextmavens"
    db_host: str = "db"
    db_port: int = 5432
    kong_admin_url: str = "http://127.0.0.1:8001"  # reached only inside the host
    kong_proxy: str = "127.0.0.1:8000"  # where nginx sends API traffic
    realtime_upstream: str = "realtime:4000"  # where Kong sends realtime traffic
    realtime_api_url: str = "http://127.0.0.1:4001"  # tenant API, host-only
    supavisor_api_url: str = "http://127.0.0.1:4000"  # tenant API, host-only
    studio_upstream: str = "127.0.0.1:3000"
    pooler_host: str = Field(default="", description="Public name of the pooler; default api_domain")
    pooler_transaction_port: int = 6543
    pooler_session_port: int = 5432

    # Platform-only secrets: never a project's JWT secret
    supavisor_api_secret: SecretStr = Field(default=SecretStr(""))
    realtime_api_secret: SecretStr = Field(default=SecretStr(""))
    pooler_manager_password: SecretStr = Field(default=SecretStr(""), description="pgbouncer role")
    realtime_db_password: SecretStr = Field(default=SecretStr(""), description="supabase_admin for CDC")
    realtime_db_user: str = "supabase_admin"
    realtime_region: str = "local"

    # Kong behaviour
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])

    # nginx
    http_port: int = 80
    https_port: int = 443
    listen_address: str = ""  # empty: all addresses; tests use 127.0.0.1
    # The default server (unknown names refused) and http-level defaults (server_tokens); False when the host's
    # nginx already has them (the deploy's nginx.conf and default server): nginx refuses them twice.
    default_server: bool = True
    client_max_body_size_mb: Annotated[int, Field(ge=1, le=5000)] = 50
    acme_webroot: str = "/var/www/acme"
    letsencrypt_dir: str = "/etc/letsencrypt"
    studio_htpasswd: str = "/etc/nginx/nextmavens-studio.htpasswd"

    # Certificates
    acme_email: str = ""
    acme_server: str = ""  # empty: certbot's default (Let's Encrypt production)
    wildcard_dns01: bool = False  # one *.api_domain certificate through Cloudflare DNS-01
    cloudflare_credentials: str = "/etc/letsencrypt/cloudflare.ini"

    # Per-project container images (production pins; the sandbox substitutes local builds)
    # The same pins as group_data/all.py (a test keeps them equal to nextmavens.upstream.facts.PINNED).
    postgrest_image: str = "postgrest/postgrest:v14.5"  # >= 14.0 for `postgrest --ready` (health check)
    gotrue_image: str = "supabase/gotrue:v2.177.0"
    storage_image: str = "supabase/storage-api:v1.25.7"
    storage_root: str = "/var/lib/nextmavens/storage"  # one directory per project, bind-mounted
    projects_dir: str = "/etc/nextmavens/projects"  # compose file + 0600 env files per project

    @field_validator("api_domain", "studio_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_domain(value)

    def project_host(self, ref: str) -> str:
        return f"{ref}.{self.api_domain}"

    def api_url(self, ref: str) -> str:
        return f"https://{self.project_host(ref)}"

    @property
    def pooler_public_host(self) -> str:
        return self.pooler_host or self.api_domain
