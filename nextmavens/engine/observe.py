"""Read the live cluster in a fixed number of queries, whatever the number of projects.

Shared catalogs (roles, memberships, settings, databases, pg_shdepend) describe every database at once;
the control database adds what was recorded and stored. Ten queries in all.

Extension names live only in each database's own catalog: `observe_extensions` reads them, one connection
and one query per database, for the few databases the planner asks about (plan.databases_to_inspect).
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from nextmavens.control.crypto import Sealer
from nextmavens.control.db import connect_cluster
from nextmavens.control.store import projects
from nextmavens.control.store import secrets as sealed
from nextmavens.engine.observed import (
    PUBLIC,
    ObservedDatabase,
    ObservedExtension,
    ObservedRole,
    ObservedState,
)

TRACKED_CATALOGS = (
    "pg_namespace",
    "pg_default_acl",
    "pg_extension",
    "pg_event_trigger",
    "pg_publication",
    "pg_proc",
    "pg_class",  # the whatsapp schema's tables, and privileges on them
    "pg_policy",
)


def observe(cluster: psycopg.Connection, control: psycopg.Connection, sealer: Sealer) -> ObservedState:
    state = ObservedState()
    for name, login, inherit, bypassrls, superuser, password in cluster.execute(
        "SELECT rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper, rolpassword FROM pg_authid"
    ):
        state.roles[name] = ObservedRole(name, login, inherit, bypassrls, superuser, password)

    for member, role in cluster.execute(
        "SELECT m.rolname, r.rolname FROM pg_auth_members a"
        " JOIN pg_roles m ON m.oid = a.member JOIN pg_roles r ON r.oid = a.roleid"
    ):
        state.memberships.setdefault(member, set()).add(role)

    for role, database, config in cluster.execute(
        "SELECT r.rolname, d.datname, s.setconfig FROM pg_db_role_setting s"
        " LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase"
    ):
        pairs = dict(item.split("=", 1) for item in config or [])
        if role is not None and database is None:
            state.role_settings[role] = pairs
        elif database is not None and role is None:
            state.database_settings[database] = pairs

    acl_rows = cluster.execute(
        "SELECT d.datname, pg_get_userbyid(d.datdba), d.datconnlimit, d.datallowconn,"
        " coalesce(array_agg(ARRAY[coalesce(g.rolname, %s), a.privilege_type])"
        "   FILTER (WHERE a.privilege_type IS NOT NULL), '{}')"
        " FROM pg_database d"
        " LEFT JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a ON true"
        " LEFT JOIN pg_roles g ON g.oid = a.grantee"
        " GROUP BY d.datname, d.datdba, d.datconnlimit, d.datallowconn",
        (PUBLIC,),
    )
    for name, owner, limit, allow, acl in acl_rows:
        state.databases[name] = ObservedDatabase(name, owner, limit, frozenset((g, p) for g, p in acl), allow)

    for database, catalog, role, deptype, count in cluster.execute(
        "SELECT d.datname, c.relname, r.rolname, s.deptype::text, count(*) FROM pg_shdepend s"
        " JOIN pg_database d ON d.oid = s.dbid JOIN pg_class c ON c.oid = s.classid"
        " JOIN pg_roles r ON r.oid = s.refobjid"
        " WHERE c.relname = ANY(%s) GROUP BY 1, 2, 3, 4",
        (list(TRACKED_CATALOGS),),
    ):
        state.dependencies[(database, catalog, role, deptype)] = count

    state.available_extensions = {name for (name,) in cluster.execute("SELECT name FROM pg_available_extensions")}
    state.sessions = {
        (database, role)
        for database, role in cluster.execute(
            "SELECT datname, usename FROM pg_stat_activity WHERE datname IS NOT NULL AND usename IS NOT NULL"
        )
    }

    state.control_projects = {project.ref: project for project in projects.all_projects(control)}
    state.control_orgs = projects.all_orgs(control)
    for scope, name, nonce, ciphertext in sealed.all_sealed(control):
        state.secret_names.setdefault(scope, set()).add(name)
        if name.startswith("verifier:"):
            state.expected_verifiers[name.removeprefix("verifier:")] = sealer.open(nonce, ciphertext, f"{scope}/{name}")
    return state


# Each extension with its owner, its schema, and the extensions that require it (pg_depend links them).
_EXTENSIONS = (
    "SELECT e.extname, pg_get_userbyid(e.extowner), n.nspname,"
    " array(SELECT r.extname FROM pg_depend d JOIN pg_extension r ON r.oid = d.objid"
    "  WHERE d.classid = 'pg_extension'::regclass AND d.refclassid = 'pg_extension'::regclass"
    "  AND d.refobjid = e.oid ORDER BY 1)"
    " FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
)


def observe_extensions(dsn: str, state: ObservedState, databases: Iterable[str]) -> None:
    """Fill `state.extensions` for `databases`: one connection and one query each.

    A superuser session inside a project's database: trusted_path pins the search path to pg_catalog, so no
    function or operator the project defined (its owner may set the database's search_path) runs here.
    """
    for database in databases:
        with connect_cluster(dsn, database, trusted_path=True) as conn:
            state.extensions[database] = {
                name: ObservedExtension(name, owner, schema, tuple(required_by))
                for name, owner, schema, required_by in conn.execute(_EXTENSIONS)
            }
