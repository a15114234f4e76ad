"""Platform settings the edge needs, as one typed value.

On the host, `nextmavens.host.edgeconfig.edge_settings` builds it from validated host data (group_data/ holds those
defaults), and `nextmavens apply` reads it back from the file the deploy writes, adding the platform-only
secrets from their 0600 files. So a field the host data decides has NO default here: a settings file without
it is an error naming the field, never a silent second default. One exception, `max_projects`: its None
("not sized") lets the previous release's file load; it is not a second value for the knob. The other
fields are the edge's own, with their default here next to their meaning
(tests/unit/host/test_host_edge_settings.py keeps the two groups apart). Secrets are `SecretStr`, so
printing the settings never shows them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from nextmavens.validation import check_domain

# Per-project footprints in MiB, measured with docker stats (DESIGN.md section 4; reference section 8).
# certbot's --config-dir: its live/ holds the certificates nginx serves, so certbot and nginx take it from here.
LETSENCRYPT_DIR = "/etc/letsencrypt"

POSTGREST_MB = 120
GOTRUE_MB = 34
STORAGE_MB = 125


class EdgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- From host data: set by nextmavens.host.edgeconfig.edge_settings, defaults in group_data/all.py ----------
    api_domain: str = Field(description="Projects answer at <ref>.<api_domain>")
    studio_domain: str = Field(description="Operator-only Studio, behind basic auth")
    host_ipv4: str = Field(description="Public address every served name must resolve to (DNS check)")
    acme_email: str = Field(description="Let's Encrypt account address (admin_email); may be empty")
    # Memory admission: the budget the shared services and the projects share, and each shared service's share
    memory_budget_mb: Annotated[int, Field(ge=512)]
    shared_services_mb: dict[str, int]
    # Internal addresses (host:port on the platform network, as Kong and the services see them)
    platform_network: str
    db_host: str  # the shared Postgres' container name
    kong_admin_url: str  # reached only inside the host
    kong_proxy: str  # where nginx sends API traffic
    realtime_upstream: str  # where Kong sends realtime traffic
    realtime_api_url: str  # tenant API, host-only
    supavisor_api_url: str  # tenant API, host-only
    studio_upstream: str
    pooler_transaction_port: int
    # nginx
    client_max_body_size_mb: Annotated[int, Field(ge=1, le=5000)]
    acme_webroot: str
    # The default server (unknown names refused) and http-level defaults (server_tokens); False when the host's
    # nginx already has them (the deploy's nginx.conf and default server): nginx refuses them twice.
    default_server: bool
    # Per-project container images (the pins in group data `images`; the sandbox substitutes local builds)
    postgrest_image: str
    gotrue_image: str
    storage_image: str
    # Projects the shared Postgres is sized for (group data `max_projects`): a Realtime replication slot and
    # walsender each. Set by the host like the fields above, but an edge file written by the release before it
    # lacks it and must still load (a reconcile timer may run before the deploy rewrites the file): None means
    # "not sized", and the check then refuses nothing on this count.
    max_projects: Annotated[int, Field(ge=1)] | None = None
    # Evolution API (WhatsApp): its API on the host's loopback, and the base URL of the platform service's webhook
    # receiver as the Evolution container reaches it (each instance's webhook is <this>/hooks/evolution/...).
    # Set by the host like max_projects, with None for the same reason: the previous release's file lacks them;
    # the edge then leaves WhatsApp instances alone and warns about the declared ones.
    evolution_api_url: str | None = None
    evolution_hooks_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")] | None = None
    # nginx's server for those webhooks (nextmavens/host/evolutionhooks.py): its port on every address, and the one
    # source address it allows (the Evolution container's); None (the previous release's file) renders no server.
    evolution_hooks_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    evolution_hooks_source: str | None = None
    # The platform service (`nextmavens platform serve`, loopback) that nginx serves at platform_domain: set by the
    # host like the fields above; None (an edge file of the release before) renders no platform vhost.
    platform_domain: str | None = None
    platform_upstream: str | None = None  # host:port the service listens on
    # Studio for a project (README "Studio for a project"): its public name (behind the service's auth_request);
    # the meta gate in front of postgres-meta, its listen address and the one network it allows (the per-project
    # Studios'); postgres-meta's host:port. None renders neither (the operator's Studio stays as it is).
    project_studio_domain: str | None = None
    studio_meta_gate_listen: Annotated[str, Field(pattern=r"^([0-9.]+:)?[0-9]{1,5}$")] | None = None
    studio_meta_gate_source: str | None = None  # an address or a network (CIDR)
    postgres_meta_upstream: str | None = None
    # ... and how `nextmavens studio start` runs a project's Studio (nextmavens/studiohost.py): the pinned image, its
    # memory limit, the Studios' docker network, and the meta gate's URL as a container there reaches it.
    studio_image: str | None = None
    project_studio_memory_mb: Annotated[int, Field(ge=64)] | None = None
    project_studio_network: str | None = None
    studio_meta_gate_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")] | None = None

    # --- The edge's own (no host-data knob) ----------------------------------------------------------------
    db_port: int = 5432  # Postgres' port inside the platform network
    pooler_host: str = Field(default="", description="Public name of the pooler; default api_domain")
    pooler_session_port: int = 5432

    # Platform-only secrets, read from 0600 files (the settings file names them): never a project's JWT secret
    supavisor_api_secret: SecretStr = Field(default=SecretStr(""))
    realtime_api_secret: SecretStr = Field(default=SecretStr(""))
    pooler_manager_password: SecretStr = Field(default=SecretStr(""), description="pgbouncer role")
    realtime_db_password: SecretStr = Field(default=SecretStr(""), description="supabase_admin for CDC")
    evolution_api_key: SecretStr = Field(default=SecretStr(""), description="Evolution's global API key")
    realtime_db_user: str = "supabase_admin"
    realtime_region: str = "local"

    # Kong behaviour
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])

    # nginx
    http_port: int = 80
    https_port: int = 443
    listen_address: str = ""  # empty: all addresses; tests use 127.0.0.1
    letsencrypt_dir: str = LETSENCRYPT_DIR
    studio_htpasswd: str = "/etc/nginx/nextmavens-studio.htpasswd"
    # nginx's structured access log the metrics collector reads (nextmavens/metrics/accesslog.py): None renders
    # none. Written at the http level, so an http-level `access_log off` in the host's nginx.conf would cancel it.
    metrics_log: str | None = None

    # Certificates
    acme_server: str = ""  # empty: certbot's default (Let's Encrypt production)
    wildcard_dns01: bool = False  # one *.api_domain certificate through Cloudflare DNS-01
    cloudflare_credentials: str = "/etc/letsencrypt/cloudflare.ini"

    # Per-project files
    storage_root: str = "/var/lib/nextmavens/storage"  # one directory per project, bind-mounted
    # Each project's compose file and 0600 env files (not the manifests: those are the CLI's --projects)
    services_dir: str = "/etc/nextmavens/projects"

    @field_validator("api_domain", "studio_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_domain(value)

    @field_validator("evolution_hooks_source")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.ip_address(value))  # it goes into nginx's allow line

    @field_validator("studio_meta_gate_source")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.ip_network(value, strict=True))  # nginx's allow line

    @field_validator("platform_domain", "project_studio_domain")
    @classmethod
    def _platform_domain(cls, value: str | None) -> str | None:
        return None if value is None else check_domain(value)

    def project_host(self, ref: str) -> str:
        return f"{ref}.{self.api_domain}"

    def api_url(self, ref: str) -> str:
        return f"https://{self.project_host(ref)}"

    @property
    def pooler_public_host(self) -> str:
        return self.pooler_host or self.api_domain
