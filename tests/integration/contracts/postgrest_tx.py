"""PostgREST v14.5's database side, statement by statement, read from PostgREST/postgrest@v14.5 (the pin,
nextmavens/upstream/facts.py POSTGREST_V14_5). Each step names the file it follows. Only the settings the
project renders for PostgREST (rest.env) drive it, so a rendering change shows up here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import psycopg
from psycopg import sql

# src/PostgREST/Config/Database.hs, queryRoleSettings (the PostgreSQL >= 15 branch): run once as the
# authenticator when the schema cache loads; the settings of every role it may become are applied per request.
ROLE_SETTINGS_SQL = """
with
role_setting as (
  select r.rolname, unnest(r.rolconfig) as setting
  from pg_auth_members m
  join pg_roles r on r.oid = m.roleid
  where member = current_user::regrole::oid
),
kv_settings AS (
  SELECT
    rolname,
    substr(setting, 1, strpos(setting, '=') - 1) as key,
    lower(substr(setting, strpos(setting, '=') + 1)) as value
  FROM role_setting
),
iso_setting AS (
  SELECT rolname, value
  FROM kv_settings
  WHERE key = 'default_transaction_isolation'
)
select
  kv.rolname,
  i.value as iso_lvl,
  coalesce(array_agg(row(kv.key, kv.value)) filter (where key <> 'default_transaction_isolation'), '{}')
    as role_settings
from kv_settings kv
join pg_settings ps on ps.name = kv.key and (ps.context = 'user'
  or has_parameter_privilege(current_user::regrole::oid, ps.name, 'set'))
left join iso_setting i on i.rolname = kv.rolname
group by kv.rolname, i.value
"""

ISOLATION = {"repeatable read": "REPEATABLE READ", "serializable": "SERIALIZABLE"}  # else READ COMMITTED


def _begin(conn: psycopg.Connection, isolation: str, write: bool) -> None:
    # hasql-transaction, as src/PostgREST/MainTx.hs uses it: BEGIN with the isolation level and mode.
    conn.execute(f"BEGIN ISOLATION LEVEL {isolation} {'READ WRITE' if write else 'READ ONLY'}")


def load_role_settings(conn: psycopg.Connection) -> dict[str, tuple[str | None, dict[str, str]]]:
    """rolname -> (isolation level, settings), as queryRoleSettings returns them (a READ ONLY transaction)."""
    _begin(conn, "READ COMMITTED", write=False)
    try:
        rows = conn.execute(ROLE_SETTINGS_SQL).fetchall()
    finally:
        conn.execute("COMMIT")
    return {name: (iso, dict(pairs)) for name, iso, pairs in rows}


def claims_of(token: str, rest_env: dict[str, str]) -> dict[str, Any]:
    """src/PostgREST/Auth/Jwt.hs (parseClaims, validateClaims) and Config.hs (audMatchesCfg: with no jwt-aud,
    any audience passes): the verified claims, with `role` defaulting to db-anon-role."""
    secret: bytes = rest_env["PGRST_JWT_SECRET"].encode()
    if rest_env.get("PGRST_JWT_SECRET_IS_BASE64", "false").lower() == "true":
        secret = base64.b64decode(secret)
    audience = rest_env.get("PGRST_JWT_AUD")
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], audience=audience, options={"verify_aud": audience is not None}
    )
    role = claims.get("role") or rest_env["PGRST_DB_ANON_ROLE"]
    return {**claims, "role": role}


def _ident_list(names: list[str]) -> str:
    # src/PostgREST/Query/SqlFragment.hs: escapeIdentList / escapeIdent
    return ", ".join('"' + n.replace('"', '""') + '"' for n in names)


def app_settings(rest_env: dict[str, str]) -> dict[str, str]:
    # src/PostgREST/Config.hs parseAppSettings: PGRST_APP_SETTINGS_<X> becomes app.settings.<X> (case kept).
    prefix = "PGRST_APP_SETTINGS_"
    return {"app.settings." + k.removeprefix(prefix): v for k, v in rest_env.items() if k.startswith(prefix)}


@contextmanager
def request(
    conn: psycopg.Connection,
    rest_env: dict[str, str],
    role_settings: dict[str, tuple[str | None, dict[str, str]]],
    token: str,
    *,
    method: str = "GET",
    path: str = "/notes",
    write: bool = False,
) -> Iterator[dict[str, Any]]:
    """One request's transaction, up to the main query (which the caller runs inside it); commits at the end
    (db-tx-end's default), rolls back on an error. Yields the claims PostgREST put in request.jwt.claims."""
    claims = claims_of(token, rest_env)
    role = claims["role"]
    iso, settings = role_settings.get(role, (None, {}))
    schema = rest_env["PGRST_DB_SCHEMAS"].split(",")[0]  # no Accept-Profile header: the first schema
    extra = [s for s in rest_env.get("PGRST_DB_EXTRA_SEARCH_PATH", "public").split(",") if s]
    # src/PostgREST/Query/PreQuery.hs txVarQuery, in its order: search_path, the role's settings, role, claims,
    # method, path, headers, cookies, (timezone, function settings: none here), app settings.
    pairs: list[tuple[str, str]] = [("search_path", _ident_list([schema, *extra]))]
    pairs += list(settings.items())
    pairs += [
        ("role", role),
        ("request.jwt.claims", json.dumps(claims)),
        ("request.method", method),
        ("request.path", path),
        ("request.headers", json.dumps({"accept": "application/json", "authorization": f"Bearer {token}"})),
        ("request.cookies", json.dumps({})),
    ]
    pairs += list(app_settings(rest_env).items())
    _begin(conn, ISOLATION.get(iso or "", "READ COMMITTED"), write)  # MainTx.hs planIsoLvl / planTxMode
    try:
        conn.execute(
            "select " + ", ".join("set_config(%s, %s, true)" for _ in pairs),
            [value for pair in pairs for value in pair],
        )
        yield claims
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_query(table: str, max_rows: int | None, limit: int | None = None) -> tuple[sql.Composed, tuple[int, ...]]:
    """The shape of a GET /<table>: src/PostgREST/Query/Statements.hs mainRead around readPlanToQuery, with
    the range restricted by db-max-rows (Plan.hs treeRestrictRange, RangeQuery.hs restrictRange) and written
    by SqlFragment.hs limitOffsetF as LIMIT/OFFSET."""
    cap = [n for n in (max_rows, limit) if n is not None]
    qualified = sql.Identifier("public", table)
    source = sql.SQL("SELECT {}.* FROM {}").format(qualified, qualified)
    if cap:
        source = sql.SQL("{} LIMIT %s OFFSET %s").format(source)
    query = sql.SQL(
        "WITH pgrst_source AS ( {} ) "
        "SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
        "coalesce(json_agg(_postgrest_t), '[]') AS body, "
        "nullif(current_setting('response.headers', true), '') AS response_headers, "
        "nullif(current_setting('response.status', true), '') AS response_status, "
        "'' AS response_inserted "
        "FROM ( SELECT * FROM pgrst_source ) _postgrest_t"
    ).format(source)
    return query, ((min(cap), 0) if cap else ())
