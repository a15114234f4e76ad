"""Names derived from a project's ref: one place, so the engine, the renderers and validation agree.

A ref is a DNS-safe slug (`my-shop`). PostgreSQL names use it with hyphens turned into underscores
(`my_shop`); since refs never contain underscores, two refs can never map to the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

# A DNS label that is also safe in PostgreSQL names once hyphens become underscores. ASCII only, so
# unicode look-alikes (a Cyrillic "а") never pass. Manifests, the platform's routes and the developer commands
# all check refs (and org slugs) with it; WhatsApp instance names follow the same rule.
REF_PATTERN = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
INSTANCE_NAME_PATTERN = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"

PG_IDENTIFIER_MAX_BYTES = 63
CONTROL_DATABASE = "nextmavens"

# Cluster-wide roles every Supabase service and RLS policy assumes by name (created once per cluster).
API_ROLES = ("anon", "authenticated", "service_role")
POOLER_ROLE = "pgbouncer"
# The NOLOGIN superuser that owns each project database's layer (see engine/desired.py).
LAYER_ROLE = "nextmavens_layer"

# Role names Supabase's images create or reserve; a project ref may not take them.
SUPABASE_ROLE_NAMES = frozenset(
    {
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
        "pgbouncer",
        "postgres",
        "supabase_admin",
        "supabase_auth_admin",
        "supabase_storage_admin",
        "supabase_replication_admin",
        "supabase_read_only_user",
        "supabase_realtime_admin",
        "supabase_functions_admin",
        "dashboard_user",
    }
)
# Databases PostgreSQL and the platform's own stacks use (stacks/*/stack.yaml; Evolution's is group data's
# `evolution_database`, "evolution" by default). A project whose ref named one would take it over.
PLATFORM_DATABASES = frozenset({"postgres", "template0", "template1", CONTROL_DATABASE, "_supabase", "evolution"})
PLATFORM_ROLES = SUPABASE_ROLE_NAMES | frozenset({"evolution", LAYER_ROLE})
# The one list of names a project ref may not take (validation and the planner both read it).
RESERVED_REFS = PLATFORM_ROLES | PLATFORM_DATABASES | frozenset({"public", "realtime", "supavisor", "kong", "studio"})
RESERVED_REF_PREFIXES = ("pg-", "supabase", "nextmavens")


def reserved_ref(ref: str) -> bool:
    """Whether a ref (or its PostgreSQL form) names something of PostgreSQL's or the platform's own."""
    return ref in RESERVED_REFS or pg_name(ref) in RESERVED_REFS or ref.startswith(RESERVED_REF_PREFIXES)


def pg_name(ref: str) -> str:
    """The ref as it appears inside PostgreSQL identifiers."""
    return ref.replace("-", "_")


# The platform service's systemd unit: tasks/platform.py installs it, the doctor checks it.
PLATFORM_UNIT = "nextmavens-platform.service"
# ... and the PostgreSQL role it logs in as: no superuser; its grants are control migration 0500_platform_role.sql.
PLATFORM_ROLE = "nextmavens_platform"
# The metrics collector's role (nextmavens-metrics.service): its grants are control migration 1020_metrics_role.sql.
METRICS_ROLE = "nextmavens_metrics"


# Evolution API instance names are unique across its whole database, which every project shares. Refs are
# unique across all orgs (manifest loader), and neither a ref nor an instance name may hold "--" (their
# patterns allow single hyphens only), so joining them with "--" can never give two (ref, instance) pairs the
# same name: with a single hyphen, ref `shop-eu` + `main` and ref `shop` + `eu-main` would both be
# `shop-eu-main`.
EVOLUTION_NAME_SEPARATOR = "--"

def app_stem(ref: str, app: str) -> str:
    """One app of one project in Docker names (its release containers and images). App names follow the ref's
    pattern (single hyphens only), so "--" keeps every (ref, app) pair apart, as for Evolution's instances."""
    return f"{ref}{EVOLUTION_NAME_SEPARATOR}{app}"


def app_network(ref: str) -> str:
    """The Docker network of one project's apps (tenant code): a bridge no platform service joins, so an app never
    sits beside postgres-meta, Studio, Kong's admin API or another project's containers on the shared network."""
    return f"nextmavens-apps-{ref}"


# The schema apply makes in each project database with a WhatsApp instance (the rows the receiver stores).
WHATSAPP_SCHEMA = "whatsapp"
# ... and in each project database whose manifest declares `email` (sent and received mail).
EMAIL_SCHEMA = "email"


def evolution_instance_name(ref: str, instance: str) -> str:
    """The instance's name in the shared Evolution API."""
    return f"{ref}{EVOLUTION_NAME_SEPARATOR}{instance}"


def evolution_instance_owner(name: str) -> tuple[str, str] | None:
    """(ref, instance) of an Evolution name made by `evolution_instance_name`; None for any other name."""
    ref, separator, instance = name.partition(EVOLUTION_NAME_SEPARATOR)
    if not separator or not ref or not instance or EVOLUTION_NAME_SEPARATOR in instance:
        return None
    return ref, instance


def whatsapp_secret_names(instance: str) -> tuple[str, str]:
    """Names, in the project's secret scope, of an instance's Evolution token and its webhook secret (the
    `jwt_key` Evolution signs each webhook with)."""
    return f"whatsapp-token:{instance}", f"whatsapp-webhook-secret:{instance}"


# Name, in the project's secret scope, of the key the platform signs each WhatsApp row it forwards to the project's
# own app with (the instances' `webhook_url`): one per project, whichever instance the row came from.
WHATSAPP_FORWARD_SECRET = "whatsapp-forward-secret"


@dataclass(frozen=True)
class ProjectNames:
    """Every cluster-level name one project owns."""

    ref: str
    database: str
    owner: str
    authenticator: str
    auth_admin: str
    storage_admin: str
    realtime_slot: str
    # SELECT only, on the project's own schemas: the role read-only SQL (the MCP server's execute_sql) runs as
    readonly: str

    @property
    def login_roles(self) -> tuple[str, str, str, str, str]:
        return (self.owner, self.authenticator, self.auth_admin, self.storage_admin, self.readonly)

    def all_identifiers(self) -> dict[str, str]:
        return {
            "database": self.database,
            "owner role": self.owner,
            "authenticator role": self.authenticator,
            "auth admin role": self.auth_admin,
            "storage admin role": self.storage_admin,
            "read-only role": self.readonly,
            "realtime replication slot": self.realtime_slot,
        }


def project_names(ref: str) -> ProjectNames:
    base = pg_name(ref)
    return ProjectNames(
        ref=ref,
        database=base,
        owner=f"owner_{base}",
        authenticator=f"authenticator_{base}",
        auth_admin=f"auth_admin_{base}",
        storage_admin=f"storage_admin_{base}",
        realtime_slot=f"realtime_rls_{base}",
        readonly=f"readonly_{base}",
    )


def overlong_identifiers(ref: str) -> list[tuple[str, str]]:
    """(what, name) for each derived identifier longer than PostgreSQL allows."""
    return [
        (what, name)
        for what, name in project_names(ref).all_identifiers().items()
        if len(name.encode()) > PG_IDENTIFIER_MAX_BYTES
    ]


def compose_project_name(ref: str) -> str:
    """The docker compose project holding the project's containers (rest, auth, storage)."""
    return f"nm-{ref}"


def service_container(ref: str, service: str) -> str:
    """The container compose names for one of the project's services (its only replica)."""
    return f"{compose_project_name(ref)}-{service}-1"


# Studio for a project: the path on the Studio name where the dashboard's ticket becomes the Studio cookie (nginx
# sends it to the platform service; README "Studio for a project").
STUDIO_ENTER_PATH = "/__nextmavens/studio/enter"
