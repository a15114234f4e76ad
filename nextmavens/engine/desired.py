"""What the cluster should hold, derived from the manifests. Pure: plain values in, plain values out."""

from __future__ import annotations

from dataclasses import dataclass, field

from nextmavens.manifest.loader import LoadedOrg, LoadedProject, ManifestSet
from nextmavens.naming import (
    API_ROLES,
    EMAIL_SCHEMA,
    LAYER_ROLE,
    POOLER_ROLE,
    WHATSAPP_FORWARD_SECRET,
    WHATSAPP_SCHEMA,
    ProjectNames,
    project_names,
    whatsapp_secret_names,
)

# LAYER_ROLE owns the superuser-only objects of every project database (extensions, event triggers,
# get_auth): a NOLOGIN role of our own rather than the bootstrap superuser, because PostgreSQL records
# ownership by non-bootstrap roles in the shared catalog pg_shdepend: that lets one query over the
# whole cluster see whether these objects still exist in every project database.

# Bumped whenever the SQL of the per-database layer changes, so existing projects get it re-applied.
LAYER_VERSION = 2  # 2: the read-only role's grants
CLUSTER_SCOPE = "_cluster"
CLUSTER = "cluster"

# Where the layer's schemas live and who owns them.
LAYER_OWNED_SCHEMAS = ("extensions", "graphql_public", "pgbouncer")
EXTENSION_SCHEMA = "extensions"  # where the layer creates every declared extension
API_SCHEMAS = ("public", "extensions", "auth", "storage", "graphql_public")
OWNER_USAGE_SCHEMAS = ("extensions", "auth", "storage", "graphql_public")
DEFAULT_PRIVILEGE_KINDS = ("TABLES", "SEQUENCES", "FUNCTIONS")
AUTH_FUNCTIONS = ("uid", "role", "email", "jwt")
# The project's read-only login role (naming.ProjectNames.readonly): read-only SQL runs as it. It may connect to
# its own database only, and read (USAGE, SELECT, default privileges for the owner's new tables) the project's own
# schemas (`default_privilege_schemas`: public and the manifest's), never auth, storage, extensions or the
# whatsapp schema; it is a member of no role (so SET ROLE has nowhere to go) and never of pg_read_all_data, which
# reads every role's password hash cluster-wide. BYPASSRLS, like the owner that owns the tables (and Supabase's
# read-only user): it reads what the owner reads, no more. Its sessions start read-only and time out.
READONLY_SETTINGS = (("default_transaction_read_only", "on"), ("statement_timeout", "30s"))

# The tables of the schema naming.WHATSAPP_SCHEMA holding a project's WhatsApp messages and events (rows.py,
# store.py):
# created with the layer when the manifest declares an instance, owned by LAYER_ROLE so the project's owner
# may read and write rows but never alter the tables; never dropped (it holds the project's data).
WHATSAPP_TABLES = ("messages", "events")
WHATSAPP_WRITERS = ("service_role",)  # besides the project's owner role
# The tables of the schema naming.EMAIL_SCHEMA (engine/emailsql.py, email/store.py): sent mail and its delivery
# reports, received mail. Made like the whatsapp schema's when the manifest declares `email`; never dropped.
EMAIL_TABLES = ("messages", "events", "inbound")
EMAIL_WRITERS = ("service_role",)  # besides the project's owner role


@dataclass(frozen=True)
class RoleSpec:
    name: str
    login: bool
    inherit: bool = True
    bypassrls: bool = False
    superuser: bool = False
    member_of: tuple[str, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()
    has_password: bool = False
    scope: str = CLUSTER_SCOPE  # where its password lives in the control database
    only_ensure_exists: bool = False  # a role we must never alter (it may be the bootstrap superuser)


@dataclass(frozen=True)
class DatabaseSpec:
    name: str
    owner: str
    connection_limit: int
    connect_roles: tuple[str, ...]
    settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LayerSpec:
    """The Supabase layer inside one project database."""

    names: ProjectNames
    extensions: tuple[str, ...]
    extra_schemas: tuple[str, ...]
    whatsapp: bool = False  # the project declares a WhatsApp instance: its database gets the whatsapp schema
    email: bool = False  # the project declares `email`: its database gets the email schema

    @property
    def api_schemas(self) -> tuple[str, ...]:
        return API_SCHEMAS + self.extra_schemas

    @property
    def default_privilege_schemas(self) -> tuple[str, ...]:
        return ("public", *self.extra_schemas)

    def expected_dependencies(self) -> dict[tuple[str, str, str], int]:
        """Minimum pg_shdepend rows per (catalog, role, deptype) once the layer is in place.

        At least, not exactly: the project's own tables and grants add rows of the same kinds.
        """
        n = self.names
        api_schema_count = len(self.api_schemas)
        default_acls = len(DEFAULT_PRIVILEGE_KINDS) * len(self.default_privilege_schemas)
        expected = {
            ("pg_namespace", n.readonly, "a"): len(self.default_privilege_schemas),
            ("pg_default_acl", n.readonly, "a"): len(self.default_privilege_schemas),
            ("pg_namespace", n.auth_admin, "o"): 1,
            ("pg_namespace", n.storage_admin, "o"): 1,
            ("pg_namespace", LAYER_ROLE, "o"): len(LAYER_OWNED_SCHEMAS),
            ("pg_namespace", POOLER_ROLE, "a"): 1,
            ("pg_namespace", n.owner, "a"): len(OWNER_USAGE_SCHEMAS),
            ("pg_namespace", n.auth_admin, "a"): 1,
            ("pg_namespace", n.storage_admin, "a"): 1,
            ("pg_default_acl", n.owner, "o"): default_acls,
            ("pg_extension", LAYER_ROLE, "o"): len(self.extensions),
            ("pg_event_trigger", LAYER_ROLE, "o"): 2,
            ("pg_publication", LAYER_ROLE, "o"): 1,
            ("pg_proc", POOLER_ROLE, "a"): 1,
            ("pg_proc", n.auth_admin, "o"): len(AUTH_FUNCTIONS),
        }
        if self.extra_schemas:
            expected[("pg_namespace", n.owner, "o")] = len(self.extra_schemas)
        for role in API_ROLES:
            expected[("pg_namespace", role, "a")] = api_schema_count
            expected[("pg_default_acl", role, "a")] = default_acls
        for key, count in self.tenant_dependencies().items():
            expected[key] = expected.get(key, 0) + count
        return {key: count for key, count in expected.items() if count > 0}

    @property
    def tenant_schemas(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
        """(schema, its tables, its writers besides the owner) of the platform's schemas this database should hold."""
        wanted: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        if self.whatsapp:
            wanted.append((WHATSAPP_SCHEMA, WHATSAPP_TABLES, WHATSAPP_WRITERS))
        if self.email:
            wanted.append((EMAIL_SCHEMA, EMAIL_TABLES, EMAIL_WRITERS))
        return tuple(wanted)

    def tenant_dependencies(self) -> dict[tuple[str, str, str], int]:
        """The pg_shdepend rows the platform's schemas (whatsapp, email) add (part of expected_dependencies); none
        when none is wanted.

        The project's owner gets no table privileges and no policies from anything else the platform
        creates, so its pg_class and pg_policy rows tell whether these schemas were created.
        """
        expected: dict[tuple[str, str, str], int] = {}
        for _, tables, writers in self.tenant_schemas:
            count = len(tables)
            found = {
                ("pg_namespace", LAYER_ROLE, "o"): 1,
                # each table and the sequence of its identity column
                ("pg_class", LAYER_ROLE, "o"): 2 * count,
            }
            for role in (self.names.owner, *writers):
                found[("pg_namespace", role, "a")] = 1
                found[("pg_class", role, "a")] = count
                found[("pg_policy", role, "r")] = count
            for key, value in found.items():
                expected[key] = expected.get(key, 0) + value
        return expected


@dataclass(frozen=True)
class ProjectSpec:
    key: str
    org: str
    ref: str
    name: str
    state: str
    manifest_path: str
    names: ProjectNames
    roles: tuple[RoleSpec, ...]
    database: DatabaseSpec
    layer: LayerSpec
    # Declared instance names: each gets a token and webhook secret, and any one the project's forwarding secret.
    whatsapp_instances: tuple[str, ...] = ()

    @property
    def database_secret_names(self) -> set[str]:
        """The JWT secret and one password per login role."""
        return {"jwt_secret"} | {f"password:{r.name}" for r in self.roles}

    @property
    def secret_names(self) -> set[str]:
        """The names this project's secret scope must hold once the database step has run."""
        needed = self.database_secret_names
        for instance in self.whatsapp_instances:
            needed.update(whatsapp_secret_names(instance))
        if self.whatsapp_instances:
            needed.add(WHATSAPP_FORWARD_SECRET)
        return needed

    @property
    def managed(self) -> bool:
        """Absent projects are left exactly as they are: never changed, never dropped."""
        return self.state != "absent"


@dataclass(frozen=True)
class OrgSpec:
    slug: str
    name: str
    members: tuple[tuple[str, str], ...]  # (email, role)


@dataclass(frozen=True)
class DesiredState:
    cluster_roles: tuple[RoleSpec, ...]
    projects: tuple[ProjectSpec, ...] = field(default=())
    orgs: tuple[OrgSpec, ...] = field(default=())

    def project(self, ref: str) -> ProjectSpec | None:
        return next((p for p in self.projects if p.ref == ref), None)


def cluster_roles() -> tuple[RoleSpec, ...]:
    return (
        # GoTrue's migrations grant to `postgres`; on vanilla servers it is usually the bootstrap superuser.
        RoleSpec("postgres", login=False, only_ensure_exists=True),
        RoleSpec("anon", login=False, settings=(("statement_timeout", "3s"),)),
        RoleSpec("authenticated", login=False, settings=(("statement_timeout", "8s"),)),
        RoleSpec("service_role", login=False, bypassrls=True),
        RoleSpec(POOLER_ROLE, login=True, inherit=False, has_password=True),
        RoleSpec(LAYER_ROLE, login=False, superuser=True),
    )


def project_spec(project: LoadedProject) -> ProjectSpec:
    manifest = project.manifest
    names = project_names(manifest.ref)
    can_login = manifest.state == "active"
    scope = manifest.ref
    roles = (
        RoleSpec(names.owner, login=can_login, has_password=True, scope=scope),
        RoleSpec(
            names.authenticator,
            login=can_login,
            inherit=False,
            member_of=API_ROLES,
            settings=(("lock_timeout", "8s"), ("statement_timeout", "8s")),
            has_password=True,
            scope=scope,
        ),
        RoleSpec(
            names.auth_admin,
            login=can_login,
            inherit=False,
            settings=(("search_path", "auth"),),
            has_password=True,
            scope=scope,
        ),
        RoleSpec(
            names.storage_admin,
            login=can_login,
            inherit=False,
            member_of=(names.authenticator,),
            settings=(("search_path", "storage"),),
            has_password=True,
            scope=scope,
        ),
        RoleSpec(
            names.readonly,
            login=can_login,
            inherit=False,
            bypassrls=True,
            settings=READONLY_SETTINGS,
            has_password=True,
            scope=scope,
        ),
    )
    database = DatabaseSpec(
        name=names.database,
        owner=names.owner,
        connection_limit=manifest.database.connection_limit,
        connect_roles=(*names.login_roles, POOLER_ROLE),
        settings=(("app.settings.jwt_exp", str(manifest.api.jwt_expiry)),),
    )
    layer = LayerSpec(
        names=names,
        extensions=tuple(manifest.database.extensions),
        extra_schemas=tuple(manifest.database.schemas),
        whatsapp=bool(manifest.whatsapp.instances),
        email=manifest.email is not None,
    )
    return ProjectSpec(
        key=project.key,
        org=project.org,
        ref=manifest.ref,
        name=manifest.name,
        state=manifest.state,
        manifest_path=project.path,
        names=names,
        roles=roles,
        database=database,
        layer=layer,
        whatsapp_instances=tuple(i.name for i in manifest.whatsapp.instances),
    )


def org_spec(org: LoadedOrg) -> OrgSpec:
    if org.manifest is None:
        return OrgSpec(org.slug, org.slug, ())
    return OrgSpec(org.slug, org.manifest.name, tuple((m.email, m.role) for m in org.manifest.members))


def desired_state(manifests: ManifestSet) -> DesiredState:
    return DesiredState(
        cluster_roles=cluster_roles(),
        projects=tuple(project_spec(p) for p in manifests.projects),
        orgs=tuple(org_spec(manifests.orgs[slug]) for slug in sorted(manifests.orgs)),
    )
