"""Desired minus observed: a typed, ordered list of changes. Pure: no I/O, no secrets in any detail."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nextmavens.control.store.projects import ControlProject
from nextmavens.engine.desired import (
    CLUSTER,
    CLUSTER_SCOPE,
    EXTENSION_SCHEMA,
    LAYER_ROLE,
    LAYER_VERSION,
    DesiredState,
    LayerSpec,
    ProjectSpec,
    RoleSpec,
)
from nextmavens.engine.observed import PUBLIC, ObservedState
from nextmavens.naming import (
    WHATSAPP_FORWARD_SECRET,
    project_names,
    reserved_ref,
    whatsapp_secret_names,
)

# Order in which kinds of change are applied within one project (and the cluster before projects).
PHASES = (
    "org",
    "claim",
    "secrets",
    "role",
    "password",
    "membership",
    "role_setting",
    "database",
    "database_setting",
    "grant",
    "open",
    "layer",
    "sessions",
    "record",
)


@dataclass(frozen=True)
class Change:
    project: str  # ORG/PROJECT, or "cluster"
    action: str  # create | update | revoke | grant | terminate | record
    kind: str  # one of PHASES
    target: str  # the object's name
    detail: str
    # What the executor needs beyond the spec; plain values, never a secret.
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, str]:
        return {
            "project": self.project,
            "action": self.action,
            "kind": self.kind,
            "target": self.target,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Notice:
    project: str
    kind: str  # orphan | unmanaged
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"project": self.project, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notices: tuple[Notice, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def as_json(self) -> dict[str, Any]:
        return {
            "changes": [c.as_json() for c in self.changes],
            "notices": [n.as_json() for n in self.notices],
            "errors": list(self.errors),
        }


class PlanError(Exception):
    """The desired state cannot be reached on this server (e.g. an extension it does not have)."""


def make_plan(desired: DesiredState, observed: ObservedState) -> Plan:
    changes: list[Change] = []
    errors: list[str] = []
    for role in desired.cluster_roles:
        changes += _role_changes(CLUSTER, role, observed)
    ordered_cluster = sorted(changes, key=lambda c: PHASES.index(c.kind))
    for org in desired.orgs:
        if observed.control_orgs.get(org.slug) != (org.name, org.members):
            ordered_cluster.append(
                Change(
                    org.slug,
                    "record",
                    "org",
                    org.slug,
                    f"record organization {org.name!r} with {len(org.members)} member(s)",
                )
            )
    project_changes: list[Change] = []
    for project in desired.projects:
        if not project.managed:
            continue
        problems = _project_errors(project, observed)
        if problems:
            errors += problems
            continue
        project_changes += sorted(_project_changes(project, observed), key=lambda c: PHASES.index(c.kind))
    return Plan(
        changes=tuple(ordered_cluster + project_changes),
        notices=tuple(_notices(desired, observed)),
        errors=tuple(errors),
    )


def _project_errors(project: ProjectSpec, observed: ObservedState) -> list[str]:
    """Why this project cannot be applied on this server; nothing of it changes while there is one."""
    where = project.manifest_path
    if reserved_ref(project.ref):
        return [f"{where}: ref {project.ref!r} is reserved for PostgreSQL or the platform's own services"]
    foreign = _not_ours(project, observed)
    if foreign:
        verb = "exists" if len(foreign) == 1 else "exist"
        return [
            f"{where}: {' and '.join(foreign)} already {verb} on this server, but the control database does not "
            f"record them as project {project.key}'s; the platform never takes over what it did not create. "
            "Choose another ref, or (if they are left over and their data is saved) drop them first"
        ]
    errors = []
    missing = [e for e in project.layer.extensions if e not in observed.available_extensions]
    if missing:
        errors.append(f"{where}: extension(s) {', '.join(missing)} are not installed on this PostgreSQL server")
    errors += _extension_owner_errors(project, observed)
    return errors


def _not_ours(project: ProjectSpec, observed: ObservedState) -> list[str]:
    """The project's database and login roles that exist without a live control record of this project.

    The record is written (the claim step) before any of them is created, so objects of an apply killed
    half-way are still recognised as the project's own.
    """
    record = observed.control_projects.get(project.ref)
    if record is not None and not record.destroyed:
        return []
    names = project.names
    found = [f"database {names.database!r}"] if names.database in observed.databases else []
    found += [f"role {role!r}" for role in names.login_roles if role in observed.roles]
    return found


def _extension_owner_errors(project: ProjectSpec, observed: ObservedState) -> list[str]:
    """A declared extension that exists but is not the layer's: someone else created it first (the project's
    owner may create trusted ones), so CREATE EXTENSION IF NOT EXISTS would skip it and leave it theirs."""
    database = project.database.name
    found = observed.extensions.get(database, {})
    errors = []
    for name in project.layer.extensions:
        copy = found.get(name)
        if copy is None or (copy.owner, copy.schema) == (LAYER_ROLE, EXTENSION_SCHEMA):
            continue
        errors.append(
            f"{project.manifest_path}: database.extensions: extension {name!r} already exists in database "
            f"{database!r}, owned by {copy.owner} in schema {copy.schema}. The platform creates declared "
            f"extensions itself, owned by {LAYER_ROLE} in schema {EXTENSION_SCHEMA}, and never takes over one it "
            f"did not create: drop that copy (DROP EXTENSION, as its owner or a superuser; what uses it goes with "
            f"it), or remove {name!r} from database.extensions"
        )
    return errors


def databases_to_inspect(desired: DesiredState, observed: ObservedState) -> list[str]:
    """Project databases whose extensions must be read by name (observe.observe_extensions: one connection each).

    pg_shdepend counts the extensions the layer owns but does not name them: a manifest that swaps one for
    another keeps the count. Names are read only where they may differ from what is wanted: the manifest's list
    is not the one recorded at the last apply, or the layer owns a different number than declared (one was
    dropped; one left the manifest and is kept; one came with a declared one, by CASCADE). A converged cluster
    needs none.
    """
    wanted = []
    for project in desired.projects:
        database = observed.databases.get(project.database.name)
        record = observed.control_projects.get(project.ref)
        if not project.managed or database is None or not database.allow_connections:
            continue  # absent; or still to be created or opened, and its layer is planned in full anyway
        if record is None or record.destroyed:
            continue  # not the project's own: a plan error, never looked into
        declared = tuple(sorted(project.layer.extensions))
        owned = observed.dependencies.get((database.name, "pg_extension", LAYER_ROLE, "o"), 0)
        if record.extensions != declared or owned != len(declared):
            wanted.append(database.name)
    return wanted


def _project_changes(project: ProjectSpec, observed: ObservedState) -> list[Change]:
    key = project.key
    changes: list[Change] = []
    record = observed.control_projects.get(project.ref)
    if record is None or record.destroyed:
        changes.append(
            Change(key, "record", "claim", project.ref, "record the project's names as its own, before creating them")
        )
    stored = observed.secret_names.get(project.ref, set())
    if not project.secret_names <= stored:
        changes.append(
            Change(key, "create", "secrets", project.ref, _secrets_detail(project, stored)),
        )
    for role in project.roles:
        changes += _role_changes(key, role, observed)
    changes += _database_changes(project, observed)
    changes += _layer_changes(project, observed)
    if project.state != "active":
        for user in sorted({u for _, u in observed.sessions if u in project.names.login_roles}):
            changes.append(
                Change(
                    key,
                    "terminate",
                    "sessions",
                    user,
                    f"end the open sessions of {user} (project is {project.state})",
                )
            )
    if record is None or replace(record, keys_issued_at=None) != applied_record(project):
        changes.append(Change(key, "record", "record", project.ref, "record the project in the control database"))
    return changes


def _secrets_detail(project: ProjectSpec, stored: set[str]) -> str:
    """What the secrets step generates: names only, never a value."""
    detail = "generate the missing JWT secret, API keys and role passwords (stored encrypted)"
    if project.database_secret_names <= stored:
        detail = "generate missing secrets (stored encrypted)"
    instances = [i for i in project.whatsapp_instances if not set(whatsapp_secret_names(i)) <= stored]
    if instances:
        detail += f"; WhatsApp token and webhook secret for {', '.join(instances)}"
    if project.whatsapp_instances and WHATSAPP_FORWARD_SECRET not in stored:
        detail += "; the WhatsApp forwarding secret"
    return detail


def applied_record(project: ProjectSpec) -> ControlProject:
    """The control database's record of `project` as an apply leaves it; when its keys were issued is the
    secrets' business, not the manifests', so it is left out (None)."""
    return ControlProject(
        project.ref,
        project.org,
        project.name,
        project.state,
        project.manifest_path,
        None,
        LAYER_VERSION,
        False,
        tuple(sorted(project.layer.extensions)),
    )


def _role_changes(owner: str, role: RoleSpec, observed: ObservedState) -> list[Change]:
    current = observed.roles.get(role.name)
    changes: list[Change] = []
    if current is None:
        changes.append(Change(owner, "create", "role", role.name, _describe_role(role)))
    elif not role.only_ensure_exists:
        differences = [
            f"{label}: {_yes(have)} -> {_yes(want)}"
            for label, have, want in (
                ("LOGIN", current.login, role.login),
                ("INHERIT", current.inherit, role.inherit),
                ("BYPASSRLS", current.bypassrls, role.bypassrls),
                ("SUPERUSER", current.superuser, role.superuser),
            )
            if have != want
        ]
        if differences:
            changes.append(Change(owner, "update", "role", role.name, "; ".join(differences)))
    if role.only_ensure_exists:
        return changes
    if role.has_password:
        expected = observed.expected_verifiers.get(role.name)
        have = current.password if current else None
        if expected is None or have != expected:
            reason = "no stored password yet" if expected is None else "password differs from the stored secret"
            changes.append(Change(owner, "update", "password", role.name, reason, {"scope": role.scope}))
    members = observed.memberships.get(role.name, set())
    for parent in role.member_of:
        if parent not in members:
            changes.append(
                Change(
                    owner,
                    "grant",
                    "membership",
                    role.name,
                    f"GRANT {parent} TO {role.name}",
                    {"parent": parent},
                )
            )
    changes += _setting_changes(owner, "role_setting", role.name, role.settings, observed.role_settings)
    return changes


def _setting_changes(
    owner: str,
    kind: str,
    target: str,
    wanted: tuple[tuple[str, str], ...],
    observed: dict[str, dict[str, str]],
) -> list[Change]:
    """`ALTER ROLE/DATABASE ... SET` drift: each declared setting that is missing or different."""
    have = observed.get(target, {})
    return [
        Change(
            owner,
            "update",
            kind,
            target,
            f"{name}: {have.get(name, '(unset)')} -> {value}",
            {"name": name, "value": value},
        )
        for name, value in wanted
        if have.get(name) != value
    ]


def _database_changes(project: ProjectSpec, observed: ObservedState) -> list[Change]:
    key, spec = project.key, project.database
    current = observed.databases.get(spec.name)
    changes: list[Change] = []
    if current is None:
        changes.append(
            Change(
                key,
                "create",
                "database",
                spec.name,
                f"owner {spec.owner}, connection limit {spec.connection_limit}",
            )
        )
        acl: frozenset[tuple[str, str]] = frozenset({(PUBLIC, "CONNECT"), (PUBLIC, "TEMPORARY")})
    else:
        acl = current.acl
        if current.owner != spec.owner:
            changes.append(
                Change(
                    key,
                    "update",
                    "database",
                    spec.name,
                    f"owner: {current.owner} -> {spec.owner}",
                    {"owner": True},
                )
            )
        if current.connection_limit != spec.connection_limit:
            changes.append(
                Change(
                    key,
                    "update",
                    "database",
                    spec.name,
                    f"connection limit: {current.connection_limit} -> {spec.connection_limit}",
                    {"connection_limit": True},
                )
            )
    changes += _setting_changes(key, "database_setting", spec.name, spec.settings, observed.database_settings)
    allowed = set(spec.connect_roles) | {spec.owner}
    for grantee in sorted({g for g, _ in acl if g not in allowed}):
        privileges = sorted(p for g, p in acl if g == grantee)
        changes.append(
            Change(
                key,
                "revoke",
                "grant",
                spec.name,
                f"REVOKE {', '.join(privileges)} ON DATABASE {spec.name} FROM {grantee}",
                {"grantee": grantee},
            )
        )
    if current is None or not current.allow_connections:
        changes.append(
            Change(key, "update", "open", spec.name, "allow connections (once only the project's roles may connect)")
        )
    for grantee in spec.connect_roles:
        if (grantee, "CONNECT") not in acl and grantee != spec.owner:
            changes.append(
                Change(
                    key,
                    "grant",
                    "grant",
                    spec.name,
                    f"GRANT CONNECT ON DATABASE {spec.name} TO {grantee}",
                    {"grantee": grantee},
                )
            )
    return changes


def _layer_changes(project: ProjectSpec, observed: ObservedState) -> list[Change]:
    key, layer = project.key, project.layer
    database = project.database.name
    if database not in observed.databases:
        detail = "create the Supabase layer inside the new database"
        if layer.tenant_schemas:
            detail += f", with the {_tenant_schemas(layer)}"
        return [Change(key, "create", "layer", database, detail)]
    expected = layer.expected_dependencies()
    tenant = layer.tenant_dependencies()
    by_name = observed.extensions.get(database)
    # extensions read by name are checked by name below: a count misses one extension swapped for another
    skipped = {"pg_extension"} if by_name is not None else set()
    base = {k: count - tenant.get(k, 0) for k, count in expected.items() if k[0] not in skipped}
    problems = _shortfalls(database, base, observed)
    if by_name is not None:
        missing = [name for name in layer.extensions if name not in by_name]
        if missing:
            problems.append(f"missing extension(s): {', '.join(missing)}")
    record = observed.control_projects.get(project.ref)
    if record is not None and record.layer_version < LAYER_VERSION and not problems:
        problems.append(f"layer version {record.layer_version} -> {LAYER_VERSION}")
    # The platform schemas' rows (whatsapp, email) come on top of the layer's; their statements are part of the
    # layer's, so running the layer again restores whichever falls short.
    tenant_short = _shortfalls(database, {k: expected[k] for k in tenant}, observed)
    names = " and ".join(f"the {schema} schema" for schema, _, _ in layer.tenant_schemas)
    if problems:
        if tenant_short:
            problems.append(names)
        return [Change(key, "update", "layer", database, "restore the Supabase layer: " + "; ".join(problems))]
    if not tenant_short:
        return []
    if not observed.dependencies.get((database, "pg_class", project.names.owner, "a")):
        # the owner is granted privileges on no table but the platform schemas': they were never created
        return [Change(key, "create", "layer", database, f"create {_tenant_schemas(layer)}")]
    detail = f"restore {names}: " + "; ".join(tenant_short)
    return [Change(key, "update", "layer", database, detail)]


def _shortfalls(database: str, minimums: dict[tuple[str, str, str], int], observed: ObservedState) -> list[str]:
    """The pg_shdepend counts of `database` below their minimum, described."""
    problems = []
    for (catalog, role, deptype), minimum in sorted(minimums.items()):
        found = observed.dependencies.get((database, catalog, role, deptype), 0)
        if found < minimum:
            problems.append(f"{_describe_dependency(catalog, role, deptype)}: {found} of {minimum}")
    return problems


def _tenant_schemas(layer: LayerSpec) -> str:
    """e.g. `whatsapp schema (tables whatsapp.messages and whatsapp.events)`."""
    return " and ".join(
        f"{schema} schema (tables " + " and ".join(f"{schema}.{t}" for t in tables) + ")"
        for schema, tables, _ in layer.tenant_schemas
    )


def _notices(desired: DesiredState, observed: ObservedState) -> list[Notice]:
    notices = []
    declared = {p.ref: p for p in desired.projects}
    for ref, record in sorted(observed.control_projects.items()):
        if record.destroyed:
            continue
        spec = declared.get(ref)
        if spec is None:
            notices.append(
                Notice(
                    f"{record.org}/{ref}",
                    "orphan",
                    f"no manifest declares {ref!r} any more; its database and roles are kept "
                    f"(remove them with: nextmavens destroy {record.org}/{ref} --confirm "
                    f"{record.org}/{ref})",
                )
            )
        elif spec.state == "absent":
            notices.append(
                Notice(
                    spec.key,
                    "orphan",
                    f"state is absent; its database {spec.database.name!r} and roles are kept "
                    f"and left unchanged (remove them with: nextmavens destroy {spec.key} "
                    f"--confirm {spec.key})",
                )
            )
    for spec in desired.projects:
        kept = _kept_extensions(spec, observed)
        if kept:
            notices.append(
                Notice(
                    spec.key,
                    "orphan",
                    f"extension(s) {', '.join(kept)} in database {spec.database.name!r} are the platform's but not "
                    "in database.extensions (removed from it): kept, since dropping an extension drops what uses it "
                    "(columns, indexes, functions). If nothing does, a superuser may DROP EXTENSION it",
                )
            )
        if spec.state == "absent" and spec.ref not in observed.control_projects:
            names = project_names(spec.ref)
            if names.database in observed.databases:
                notices.append(Notice(spec.key, "orphan", f"state is absent; database {names.database!r} is kept"))
    return notices


def _kept_extensions(project: ProjectSpec, observed: ObservedState) -> list[str]:
    """The layer's extensions the manifest no longer declares: never dropped by apply (that loses data)."""
    if not project.managed:
        return []
    found = observed.extensions.get(project.database.name, {})
    return sorted(
        e.name
        for e in found.values()
        if e.owner == LAYER_ROLE and e.name not in project.layer.extensions and not e.required_by
    )


def _describe_role(role: RoleSpec) -> str:
    words = ["LOGIN" if role.login else "NOLOGIN", "INHERIT" if role.inherit else "NOINHERIT"]
    if role.bypassrls:
        words.append("BYPASSRLS")
    if role.superuser:
        words.append("SUPERUSER")
    if role.member_of:
        words.append("member of " + ", ".join(role.member_of))
    return " ".join(words)


_DEPENDENCY_WORDS = {
    ("pg_namespace", "o"): "schemas owned by {role}",
    ("pg_namespace", "a"): "schema privileges granted to {role}",
    ("pg_default_acl", "o"): "default privileges set for {role}",
    ("pg_default_acl", "a"): "default privileges granting to {role}",
    ("pg_extension", "o"): "extensions",
    ("pg_event_trigger", "o"): "PostgREST reload event triggers",
    ("pg_publication", "o"): "the supabase_realtime publication",
    ("pg_proc", "a"): "functions {role} may execute (pgbouncer.get_auth)",
    ("pg_proc", "o"): "functions owned by {role}",
    ("pg_class", "o"): "tables and sequences owned by {role}",
    ("pg_class", "a"): "table privileges granted to {role}",
    ("pg_policy", "r"): "row security policies for {role}",
}


def _describe_dependency(catalog: str, role: str, deptype: str) -> str:
    return _DEPENDENCY_WORDS.get((catalog, deptype), f"{catalog} {deptype} {role}").format(role=role)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


__all__ = ["CLUSTER", "CLUSTER_SCOPE", "Change", "Notice", "Plan", "PlanError", "databases_to_inspect", "make_plan"]
