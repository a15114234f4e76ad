"""SQL statements for each kind of change, composed with psycopg.sql so every identifier is quoted.

Builds statements only; it runs nothing. Every statement is safe to run again after a partial apply:
creation is guarded by the plan (or IF NOT EXISTS), and alterations set the whole declared value.
"""

from __future__ import annotations

from psycopg import sql

from nextmavens.engine.desired import (
    AUTH_FUNCTIONS,
    DEFAULT_PRIVILEGE_KINDS,
    EXTENSION_SCHEMA,
    LAYER_OWNED_SCHEMAS,
    LAYER_ROLE,
    OWNER_USAGE_SCHEMAS,
    DatabaseSpec,
    LayerSpec,
    RoleSpec,
)
from nextmavens.engine.emailsql import email_statements
from nextmavens.engine.observed import PUBLIC
from nextmavens.engine.whatsappsql import whatsapp_statements
from nextmavens.naming import API_ROLES, POOLER_ROLE

Statement = sql.Composed | sql.SQL


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == PUBLIC else _ident(name)


def _role_options(role: RoleSpec) -> sql.Composable:
    words = [
        "LOGIN" if role.login else "NOLOGIN",
        "INHERIT" if role.inherit else "NOINHERIT",
        "BYPASSRLS" if role.bypassrls else "NOBYPASSRLS",
        "SUPERUSER" if role.superuser else "NOSUPERUSER",
    ]
    return sql.SQL(" ".join(words))


def create_role(role: RoleSpec) -> Statement:
    return sql.SQL("CREATE ROLE {} WITH {}").format(_ident(role.name), _role_options(role))


def alter_role(role: RoleSpec) -> Statement:
    return sql.SQL("ALTER ROLE {} WITH {}").format(_ident(role.name), _role_options(role))


def set_password(role: str, verifier: str) -> Statement:
    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(_ident(role), sql.Literal(verifier))


def grant_membership(parent: str, member: str) -> Statement:
    return sql.SQL("GRANT {} TO {}").format(_ident(parent), _ident(member))


def set_role_setting(role: str, name: str, value: str) -> Statement:
    return sql.SQL("ALTER ROLE {} SET {} = {}").format(_ident(role), _ident(name), sql.Literal(value))


def create_database(spec: DatabaseSpec) -> Statement:
    """Created closed: PUBLIC may connect to a new database until its grants are revoked (see open_database)."""
    return sql.SQL(
        "CREATE DATABASE {} WITH OWNER {} TEMPLATE template0 ENCODING 'UTF8' CONNECTION LIMIT {}"
        " ALLOW_CONNECTIONS false"
    ).format(_ident(spec.name), _ident(spec.owner), sql.Literal(spec.connection_limit))


def open_database(name: str) -> Statement:
    return sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(_ident(name))


def alter_database_owner(spec: DatabaseSpec) -> Statement:
    return sql.SQL("ALTER DATABASE {} OWNER TO {}").format(_ident(spec.name), _ident(spec.owner))


def alter_database_connection_limit(spec: DatabaseSpec) -> Statement:
    return sql.SQL("ALTER DATABASE {} WITH CONNECTION LIMIT {}").format(
        _ident(spec.name), sql.Literal(spec.connection_limit)
    )


def set_database_setting(database: str, name: str, value: str) -> Statement:
    return sql.SQL("ALTER DATABASE {} SET {} = {}").format(_ident(database), _ident(name), sql.Literal(value))


def revoke_database(database: str, grantee: str) -> Statement:
    return sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(_ident(database), _grantee(grantee))


def grant_connect(database: str, grantee: str) -> Statement:
    return sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_ident(database), _grantee(grantee))


def _api_roles() -> sql.Composable:
    return sql.SQL(", ").join(_ident(r) for r in API_ROLES)


def _create_schema(schema: str, owner: str) -> list[Statement]:
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(_ident(schema), _ident(owner)),
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(_ident(schema), _ident(owner)),
    ]


# Bodies of the functions the layer creates. Written for this project from their documented behaviour:
# auth.* read the JWT claims PostgREST sets per request; get_auth serves Supavisor's auth_query.
_AUTH_FUNCTION_BODIES = {
    "uid": (
        "uuid",
        "SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true),"
        " current_setting('request.jwt.claims', true)::jsonb ->> 'sub'), '')::uuid",
    ),
    "role": (
        "text",
        "SELECT nullif(coalesce(current_setting('request.jwt.claim.role', true),"
        " current_setting('request.jwt.claims', true)::jsonb ->> 'role'), '')::text",
    ),
    "email": (
        "text",
        "SELECT nullif(coalesce(current_setting('request.jwt.claim.email', true),"
        " current_setting('request.jwt.claims', true)::jsonb ->> 'email'), '')::text",
    ),
    "jwt": (
        "jsonb",
        "SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),"
        " nullif(current_setting('request.jwt.claims', true), ''))::jsonb",
    ),
}
assert set(_AUTH_FUNCTION_BODIES) == set(AUTH_FUNCTIONS)

_GET_AUTH = """
CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE (username text, password text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $body$
BEGIN
    -- Only this database's own login roles: never a superuser, never the pooler's own role, never a
    -- role of another project (they have no CONNECT here).
    RETURN QUERY
    SELECT s.usename::text, s.passwd::text FROM pg_shadow s
    WHERE s.usename = p_usename AND NOT s.usesuper AND s.usename <> 'pgbouncer'
      AND has_database_privilege(s.usename, current_database(), 'CONNECT');
END
$body$"""

_RELOAD_FUNCTION = """
CREATE OR REPLACE FUNCTION extensions.{name}() RETURNS event_trigger
LANGUAGE plpgsql AS $body$
BEGIN
    -- Tell PostgREST to reload its schema cache after any DDL.
    NOTIFY pgrst, 'reload schema';
END
$body$"""


def readonly_grants(layer: LayerSpec) -> list[Statement]:
    """The read-only role reads the project's own schemas: what is there now and what the owner creates later."""
    n = layer.names
    schemas = sql.SQL(", ").join(_ident(s) for s in layer.default_privilege_schemas)
    out: list[Statement] = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schemas, _ident(n.readonly)),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schemas, _ident(n.readonly)),
    ]
    for schema in layer.default_privilege_schemas:
        out.append(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                _ident(n.owner), _ident(schema), _ident(n.readonly)
            )
        )
    return out


def layer_statements(layer: LayerSpec) -> list[Statement]:
    """The Supabase layer inside one project database, run as one transaction by a superuser."""
    n = layer.names
    out: list[Statement] = []
    # Objects only a superuser may create are owned by the layer role (see desired.LAYER_ROLE).
    out.append(sql.SQL("SET LOCAL ROLE {}").format(_ident(LAYER_ROLE)))
    for schema in LAYER_OWNED_SCHEMAS:
        out += _create_schema(schema, LAYER_ROLE)
    for extension in layer.extensions:
        out.append(
            sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {} CASCADE").format(
                _ident(extension), _ident(EXTENSION_SCHEMA)
            )
        )
    out.append(sql.SQL(_GET_AUTH))
    out.append(sql.SQL("REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC"))
    out.append(sql.SQL("GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO {}").format(_ident(POOLER_ROLE)))
    out.append(sql.SQL("GRANT USAGE ON SCHEMA pgbouncer TO {}").format(_ident(POOLER_ROLE)))
    for trigger, event in (("pgrst_ddl_watch", "ddl_command_end"), ("pgrst_drop_watch", "sql_drop")):
        out.append(sql.SQL(_RELOAD_FUNCTION.format(name=trigger)))
        out.append(sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(_ident(trigger)))
        out.append(
            sql.SQL("CREATE EVENT TRIGGER {} ON {} EXECUTE FUNCTION extensions.{}()").format(
                _ident(trigger), sql.SQL(event), _ident(trigger)
            )
        )
    out.append(
        sql.SQL(
            "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')"
            " THEN CREATE PUBLICATION supabase_realtime; END IF; END $do$"
        )
    )
    if layer.whatsapp:
        out += whatsapp_statements(n)
    if layer.email:
        out += email_statements(n)
    out.append(sql.SQL("RESET ROLE"))

    out += _create_schema("auth", n.auth_admin)
    out += _create_schema("storage", n.storage_admin)
    for schema in layer.extra_schemas:
        out += _create_schema(schema, n.owner)
    out.append(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.SQL(", ").join(_ident(s) for s in layer.api_schemas), _api_roles()
        )
    )
    # The owner writes policies that call auth.uid() and uses extension functions; the service admins
    # need the extensions their migrations reference.
    out.append(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.SQL(", ").join(_ident(s) for s in OWNER_USAGE_SCHEMAS), _ident(n.owner)
        )
    )
    out.append(
        sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}, {}").format(_ident(n.auth_admin), _ident(n.storage_admin))
    )
    for schema in layer.default_privilege_schemas:
        for kind in DEFAULT_PRIVILEGE_KINDS:
            out.append(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT ALL ON {} TO {}").format(
                    _ident(n.owner), _ident(schema), sql.SQL(kind), _api_roles()
                )
            )
    out += readonly_grants(layer)
    # auth.* functions belong to the project's auth admin, so GoTrue's own migrations may replace them.
    out.append(sql.SQL("SET LOCAL ROLE {}").format(_ident(n.auth_admin)))
    for name in AUTH_FUNCTIONS:
        returns, body = _AUTH_FUNCTION_BODIES[name]
        out.append(
            sql.SQL("CREATE OR REPLACE FUNCTION auth.{}() RETURNS {} LANGUAGE sql STABLE AS {}").format(
                _ident(name), sql.SQL(returns), sql.Literal(body)
            )
        )
    out.append(sql.SQL("RESET ROLE"))
    return out
