"""GoTrue (a stand-in in the sandbox) on the database side: the role it logs in as owns schema `auth` and the
`auth.*` functions, with search_path=auth (GoTrue's migrations create unqualified tables and replace
auth.uid()); and the JWT settings rendered for GoTrue agree with those rendered for PostgREST, so a user's
access token issued by GoTrue is one PostgREST accepts and turns into auth.uid()."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import jwt
import psycopg

from nextmavens.engine.desired import AUTH_FUNCTIONS
from nextmavens.upstream.facts import pinned
from tests.integration.contracts.postgrest_tx import claims_of, load_role_settings, request
from tests.integration.contracts.projects import SHOP_JWT_EXPIRY, apply_two_projects, login_rendered, user_token
from tests.support.engine import Stage

SUB = "33333333-3333-3333-3333-333333333333"


def test_contract_gotrue_auth_admin_owns_schema_auth_and_its_functions(stage: Stage) -> None:
    projects = apply_two_projects(stage)
    for ref, project in projects.items():
        admin = project.names.auth_admin
        url = urlsplit(project.auth_env["GOTRUE_DB_DATABASE_URL"])
        assert (unquote(url.username or ""), url.path) == (admin, f"/{project.names.database}")
        assert stage.sql("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'auth'", dbname=ref) == [
            (admin,)
        ]
        functions = stage.sql(
            "SELECT proname::text, proowner::regrole::text FROM pg_proc"
            " WHERE pronamespace = 'auth'::regnamespace ORDER BY 1",
            dbname=ref,
        )
        assert functions == sorted((name, admin) for name in AUTH_FUNCTIONS)
        assert stage.sql(
            "SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s::regrole AND setdatabase = 0", (admin,)
        ) == [(["search_path=auth"],)]
        # Logged in as GoTrue is, with the password in its rendered URL.
        with login_rendered(stage, project.auth_env["GOTRUE_DB_DATABASE_URL"]) as conn:
            assert conn.execute("SHOW search_path").fetchone() == ("auth",)
            # What GoTrue's first migrations do: unqualified tables land in auth, auth.uid() is replaced.
            conn.execute("CREATE TABLE IF NOT EXISTS users (instance_id uuid, id uuid PRIMARY KEY, email text)")
            assert conn.execute(
                "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'users'::regclass"
            ).fetchone() == ("auth",)
            conn.execute(
                "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS"
                " $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$"
            )
            # ...and nothing outside its schema: not the project's tables, not the pooler's function.
            other = "desk" if ref == "shop" else "shop"
            for statement in ("CREATE TABLE public.x (id int)", "SELECT * FROM pgbouncer.get_auth('x')"):
                try:
                    conn.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    continue
                raise AssertionError(f"{admin} may run {statement!r}")
        assert stage.sql("SELECT has_database_privilege(%s, %s, 'CONNECT')", (admin, other)) == [(False,)]


def test_contract_gotrue_jwt_settings_agree_with_postgrest(stage: Stage) -> None:
    projects = apply_two_projects(stage)
    gotrue, postgrest = pinned("gotrue"), pinned("postgrest")
    for ref, project in projects.items():
        auth, rest = project.auth_env, project.rest_env
        for name in ("GOTRUE_JWT_SECRET", "GOTRUE_JWT_AUD", "GOTRUE_JWT_EXP", "GOTRUE_JWT_DEFAULT_GROUP_NAME"):
            assert gotrue.reads_env(name), name
        for name in ("PGRST_JWT_SECRET", "PGRST_APP_SETTINGS_JWT_EXP"):
            assert postgrest.reads_env(name), name
        # One secret, used as raw bytes by both (PostgREST's jwt-secret-is-base64 defaults to false).
        assert auth["GOTRUE_JWT_SECRET"] == rest["PGRST_JWT_SECRET"] == project.secrets.jwt_secret
        assert rest.get("PGRST_JWT_SECRET_IS_BASE64", "false") == "false"
        assert rest["PGRST_APP_SETTINGS_JWT_SECRET"] == project.secrets.jwt_secret
        # PostgREST accepts GoTrue's audience: it checks none unless jwt-aud is set (Config.hs audMatchesCfg).
        assert rest.get("PGRST_JWT_AUD", auth["GOTRUE_JWT_AUD"]) == auth["GOTRUE_JWT_AUD"]
        # One session lifetime: GoTrue's, PostgREST's app setting and the database's (what SQL reads).
        expiry = str(project.manifest.api.jwt_expiry)
        assert auth["GOTRUE_JWT_EXP"] == rest["PGRST_APP_SETTINGS_JWT_EXP"] == expiry
        assert stage.sql(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE s.setrole = 0 AND d.datname = %s",
            (project.names.database,),
        ) == [([f"app.settings.jwt_exp={expiry}"],)]
        # GoTrue's admin role is the role of the engine's service key; its default group a role PostgREST
        # may switch to.
        service_claims = jwt.decode(project.secrets.keys.service_role, options={"verify_signature": False})
        assert auth["GOTRUE_JWT_ADMIN_ROLES"].split(",") == [service_claims["role"]]
        assert stage.sql(
            "SELECT pg_has_role(%s, %s, 'MEMBER')", (project.names.authenticator, auth["GOTRUE_JWT_DEFAULT_GROUP_NAME"])
        ) == [(True,)]
        # So a user's token signed as GoTrue does is accepted by PostgREST and drives auth.uid() in SQL.
        token = user_token(project, SUB, f"user@{ref}.example")
        assert claims_of(token, rest)["exp"] - claims_of(token, rest)["iat"] == int(expiry)
        with login_rendered(stage, rest["PGRST_DB_URI"]) as conn:
            with request(conn, rest, load_role_settings(conn), token):
                row = conn.execute("SELECT current_user, auth.uid()::text, auth.jwt() ->> 'aud'").fetchone()
                assert row == ("authenticated", SUB, auth["GOTRUE_JWT_AUD"])
    assert projects["shop"].auth_env["GOTRUE_JWT_EXP"] == str(SHOP_JWT_EXPIRY)  # not just the default agreeing
