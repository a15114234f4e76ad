"""PostgREST (a stand-in in the sandbox) on the database side: its per-request sequence at the pinned v14.5,
run against projects the real engine applied, as each project's authenticator with its real password and
with the claims of the keys the engine issued. The sequence itself is in postgrest_tx.py, step by step."""

from __future__ import annotations

import jwt
import psycopg
import pytest

from nextmavens.upstream.facts import pinned
from tests.integration.contracts.postgrest_tx import load_role_settings, read_query, request
from tests.integration.contracts.projects import SHOP_MAX_ROWS, Applied, apply_two_projects, login_rendered, user_token
from tests.support.engine import Stage

ALICE = "11111111-1111-1111-1111-111111111111"
OWNER_SQL = """
CREATE TABLE notes (id int PRIMARY KEY, owner_id uuid, body text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON notes FOR SELECT TO authenticated USING (owner_id = auth.uid());
INSERT INTO notes VALUES (1, '11111111-1111-1111-1111-111111111111', 'alice''s'),
  (2, '22222222-2222-2222-2222-222222222222', 'bob''s');
CREATE TABLE catalog (id int PRIMARY KEY);
INSERT INTO catalog SELECT generate_series(1, 10);
"""


@pytest.fixture
def projects(stage: Stage) -> dict[str, Applied]:
    applied = apply_two_projects(stage)
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute(OWNER_SQL)
    return applied


def _one(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> tuple:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def test_contract_postgrest_request_roles_claims_grants_and_rls(stage: Stage, projects: dict[str, Applied]) -> None:
    shop = projects["shop"]
    env = shop.rest_env
    assert env["PGRST_DB_URI"].startswith(f"postgres://{shop.names.authenticator}:")
    assert env["PGRST_DB_URI"].endswith(f"/{shop.names.database}")
    with login_rendered(stage, shop.rest_env["PGRST_DB_URI"]) as conn:
        # Config/Database.hs queryRoleSettings: the engine's per-role timeouts reach PostgREST this way only
        # (ALTER ROLE ... SET does nothing on SET ROLE).
        role_settings = load_role_settings(conn)
        assert role_settings["anon"] == (None, {"statement_timeout": "3s"})
        assert role_settings["authenticated"] == (None, {"statement_timeout": "8s"})

        with request(conn, env, role_settings, shop.secrets.keys.anon) as claims:
            assert claims["role"] == "anon"
            assert _one(conn, "SELECT current_user, auth.role(), auth.uid(), auth.jwt() ->> 'iss'") == (
                "anon",
                "anon",
                None,
                "supabase",
            )
            assert _one(conn, "SHOW statement_timeout") == ("3s",)
            assert _one(conn, "SELECT current_setting('request.method'), current_setting('search_path')") == (
                "GET",
                '"public", "public", "extensions"',
            )
            # The owner's tables are granted to the API roles (default privileges); RLS hides every note.
            assert conn.execute("SELECT id FROM notes").fetchall() == []
            assert _one(conn, *read_query("catalog", None))[1] == 10
            assert _one(conn, "SELECT current_setting('app.settings.jwt_exp')") == (env["PGRST_APP_SETTINGS_JWT_EXP"],)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the pooler's function is not the API's
            with request(conn, env, role_settings, shop.secrets.keys.anon):
                conn.execute("SELECT * FROM pgbouncer.get_auth('owner_shop')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with request(conn, env, role_settings, shop.secrets.keys.anon, method="POST", write=True):
                conn.execute("INSERT INTO notes VALUES (3, NULL, 'spam')")

        alice = user_token(shop, ALICE, "alice@shop.example")
        with request(conn, env, role_settings, alice):
            assert _one(conn, "SELECT current_user, auth.role(), auth.uid()::text, auth.email()") == (
                "authenticated",
                "authenticated",
                ALICE,
                "alice@shop.example",
            )
            assert _one(conn, "SELECT auth.jwt() ->> 'aud'") == (shop.auth_env["GOTRUE_JWT_AUD"],)
            assert _one(conn, "SHOW statement_timeout") == ("8s",)
            assert conn.execute("SELECT id, body FROM notes").fetchall() == [(1, "alice's")]

        with request(conn, env, role_settings, shop.secrets.keys.service_role):
            assert _one(conn, "SELECT current_user, auth.role()") == ("service_role", "service_role")
            assert [r[0] for r in conn.execute("SELECT id FROM notes ORDER BY id")] == [1, 2]

        # The claims are the transaction's: after it, nothing of the request is left on the pooled connection.
        assert _one(
            conn, "SELECT current_user, current_setting('request.jwt.claims', true), current_setting('role')"
        ) == (
            shop.names.authenticator,
            "",
            "none",
        )


def test_contract_postgrest_refuses_keys_of_another_project(stage: Stage, projects: dict[str, Applied]) -> None:
    shop, desk = projects["shop"], projects["desk"]
    with login_rendered(stage, shop.rest_env["PGRST_DB_URI"]) as conn:
        role_settings = load_role_settings(conn)
        with (
            pytest.raises(jwt.InvalidSignatureError),
            request(conn, shop.rest_env, role_settings, desk.secrets.keys.service_role),
        ):
            pass


def test_contract_postgrest_anon_cannot_reach_another_projects_database(
    stage: Stage, projects: dict[str, Applied]
) -> None:
    shop, desk = projects["shop"], projects["desk"]
    # The only door PostgREST has is its authenticator's login: shop's does not open desk's database...
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        stage.login(shop.names.authenticator, desk.names.database, "shop")
    # ...the API roles PostgREST switches to cannot log in anywhere, nor connect to any project database...
    for role in ("anon", "authenticated", "service_role"):
        assert stage.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)) == [(False,)]
        for ref in ("shop", "desk"):
            assert stage.sql("SELECT has_database_privilege(%s, %s, 'CONNECT')", (role, ref)) == [(False,)], role
    # ...and desk's own authenticator, which can, only sees desk's database.
    with login_rendered(stage, desk.rest_env["PGRST_DB_URI"]) as conn:
        role_settings = load_role_settings(conn)
        with request(conn, desk.rest_env, role_settings, desk.secrets.keys.anon):
            assert conn.execute("SELECT to_regclass('public.notes')").fetchone() == (None,)


def test_contract_postgrest_max_rows_as_rendered(stage: Stage, projects: dict[str, Applied]) -> None:
    shop, desk = projects["shop"], projects["desk"]
    facts = pinned("postgrest")
    assert facts.source == "PostgREST/postgrest@v14.5"
    assert facts.reads_env("PGRST_DB_MAX_ROWS") and "db-max-rows" in facts.config_keys
    assert shop.rest_env["PGRST_DB_MAX_ROWS"] == str(SHOP_MAX_ROWS) == str(shop.manifest.api.max_rows)
    assert desk.rest_env["PGRST_DB_MAX_ROWS"] == str(desk.manifest.api.max_rows)
    max_rows = int(shop.rest_env["PGRST_DB_MAX_ROWS"])
    with login_rendered(stage, shop.rest_env["PGRST_DB_URI"]) as conn:
        role_settings = load_role_settings(conn)
        with request(conn, shop.rest_env, role_settings, shop.secrets.keys.anon, path="/catalog"):
            total, page_total, body, *_ = _one(conn, *read_query("catalog", max_rows))
            assert (total, page_total, [r["id"] for r in body]) == (None, SHOP_MAX_ROWS, [1, 2, 3])
            assert _one(conn, *read_query("catalog", max_rows, limit=2))[1] == 2  # ?limit=2 under the cap
            assert _one(conn, *read_query("catalog", max_rows, limit=50))[1] == SHOP_MAX_ROWS


def test_contract_postgrest_schema_reload_notify_reaches_the_listener(
    stage: Stage, projects: dict[str, Applied]
) -> None:
    shop, desk = projects["shop"], projects["desk"]
    # Listener.hs: LISTEN on db-channel (Config.hs default "pgrst"), over a connection made with db-uri;
    # "reload schema" (or an empty payload) reloads the schema cache.
    for applied in (shop, desk):
        assert applied.rest_env.get("PGRST_DB_CHANNEL", "pgrst") == "pgrst"
        assert applied.rest_env.get("PGRST_DB_CHANNEL_ENABLED", "true") == "true"
    with (
        login_rendered(stage, shop.rest_env["PGRST_DB_URI"]) as listener,
        login_rendered(stage, desk.rest_env["PGRST_DB_URI"]) as desk_listener,
        stage.login("owner_shop", "shop", "shop") as owner,
        stage.login("owner_desk", "desk", "desk") as desk_owner,
    ):
        listener.execute("LISTEN pgrst")
        desk_listener.execute("LISTEN pgrst")
        for ddl in (
            "CREATE TABLE invoices (id int)",
            "ALTER TABLE invoices ADD COLUMN total numeric",
            "CREATE VIEW open_invoices AS SELECT * FROM invoices",
            "DROP VIEW open_invoices",
        ):
            owner.execute(ddl)
            got = list(listener.notifies(timeout=5, stop_after=1))
            assert [(n.channel, n.payload, n.pid) for n in got] == [
                ("pgrst", "reload schema", owner.info.backend_pid)
            ], ddl
        # A project's DDL reloads only its own PostgREST: desk hears desk's event first, not shop's four.
        desk_owner.execute("CREATE TABLE tickets (id int)")
        got = list(desk_listener.notifies(timeout=5, stop_after=1))
        assert [(n.payload, n.pid) for n in got] == [("reload schema", desk_owner.info.backend_pid)]
        assert stage.sql(
            "SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY evtname", dbname="shop"
        ) == [("pgrst_ddl_watch", "ddl_command_end", "O"), ("pgrst_drop_watch", "sql_drop", "O")]
