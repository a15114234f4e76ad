"""The per-project read-only login role: what it may read, what it may not, and its repair after drift."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from nextmavens.naming import project_names
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.scratch import cloned_server


@pytest.fixture(scope="module")
def applied(pg_template):  # type: ignore[no-untyped-def]
    with cloned_server(pg_template, "nextmavens-readonly-") as (server, base):
        projects = base / "projects"
        write_project(projects, "acme", "shop", database={"schemas": ["app"]})
        write_project(projects, "globex", "desk")
        stage = Stage(server=server, projects=projects, master_key=base / "master.key")
        stage.apply()
        with stage.login("owner_shop", "shop", "shop") as owner:
            owner.execute("CREATE TABLE before_role (id int)")  # made before the grants are checked below
            owner.execute("INSERT INTO before_role VALUES (1)")
        yield stage


def test_the_role_exists_with_a_stored_password_and_no_power(applied: Stage) -> None:
    name = project_names("shop").readonly
    rows = applied.sql(
        "SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
        " WHERE rolname = %s",
        (name,),
    )
    assert rows == [(True, False, False, False, False, True)]
    # a member of no role at all: not pg_read_all_data, not the owner (SET ROLE has nowhere to go)
    assert applied.sql("SELECT count(*) FROM pg_auth_members WHERE member = %s::regrole", (name,)) == [(0,)]
    settings = applied.sql("SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s::regrole", (name,))
    assert "default_transaction_read_only=on" in settings[0][0]


def test_it_reads_the_projects_tables_old_and_new_and_writes_nothing(applied: Stage) -> None:
    with applied.login("owner_shop", "shop", "shop") as owner:
        owner.execute("CREATE TABLE IF NOT EXISTS app.later (id int)")
        owner.execute("INSERT INTO app.later VALUES (7)")
    with applied.login("readonly_shop", "shop", "shop") as ro:
        assert ro.execute("SELECT id FROM before_role").fetchall() == [(1,)]
        assert ro.execute("SELECT id FROM app.later").fetchall() == [(7,)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            ro.execute("INSERT INTO app.later VALUES (8)")
        # even out of the read-only default, the role holds no write privilege
        ro.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("INSERT INTO app.later VALUES (8)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("CREATE TABLE public.mine (id int)")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT rolpassword FROM pg_authid",
        "SELECT * FROM auth.users",
        "SELECT * FROM storage.objects",
        "SELECT * FROM supabase_migrations.schema_migrations",
        "SELECT * FROM pgbouncer.get_auth('owner_shop')",
        "SET ROLE owner_shop",
        "SELECT set_config('role', 'owner_shop', false)",
    ],
)
def test_it_reaches_no_internals_and_no_other_role(applied: Stage, query: str) -> None:
    with applied.login("owner_shop", "shop", "shop") as owner:
        owner.execute("CREATE SCHEMA IF NOT EXISTS supabase_migrations")
        owner.execute("CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text)")
    with applied.login("readonly_shop", "shop", "shop") as ro, pytest.raises(psycopg.errors.InsufficientPrivilege):
        ro.execute(query)


def test_it_connects_to_no_other_project_database_nor_the_control_database(applied: Stage) -> None:
    for database in ("desk", "nextmavens"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database|CONNECT privilege"):
            applied.login("readonly_shop", database, "shop")


def test_drift_is_repaired_and_a_converged_cluster_plans_nothing(applied: Stage) -> None:
    assert applied.plan().empty
    with applied.login("owner_shop", "shop", "shop") as owner:
        owner.execute("REVOKE USAGE ON SCHEMA public FROM readonly_shop")
        owner.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE SELECT ON TABLES FROM readonly_shop")
    applied.sql("ALTER ROLE readonly_shop WITH NOBYPASSRLS")
    applied.sql("ALTER ROLE readonly_shop RESET default_transaction_read_only")
    details = [(c.kind, c.target) for c in applied.plan().changes]
    assert ("role", "readonly_shop") in details and ("role_setting", "readonly_shop") in details
    assert ("layer", "shop") in details
    applied.apply()
    assert applied.plan().empty
    with applied.login("readonly_shop", "shop", "shop") as ro:
        assert ro.execute("SELECT id FROM before_role").fetchall() == [(1,)]


def test_other_projects_names_stay_readable_whatever_the_catalog_grants(applied: Stage) -> None:
    """Why the engine does not revoke SELECT on pg_database and pg_stat_activity inside project databases (README,
    issue 15): done here (rolled back), the read-only and owner roles still learn the other project's database and
    role names through views and a type's output function no grant governs."""
    admin = psycopg.connect(applied.server.dsn_for("shop"))  # a transaction, rolled back: nothing kept
    try:
        for catalog in ("pg_database", "pg_stat_activity", "pg_roles", "pg_stat_database"):
            admin.execute(sql.SQL("REVOKE SELECT ON pg_catalog.{} FROM PUBLIC").format(sql.Identifier(catalog)))
        admin.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.regroleout(regrole) FROM PUBLIC")
        desk = project_names("desk")
        for role in ("readonly_shop", "owner_shop"):
            admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute("SAVEPOINT s; SELECT datname FROM pg_database")
            admin.execute("ROLLBACK TO SAVEPOINT s")
            databases = {r[0] for r in admin.execute("SELECT datname FROM pg_stat_database_conflicts").fetchall()}
            assert desk.database in databases
            roles = admin.execute(
                "SELECT o::regrole::text FROM generate_series(16384, 20000) o WHERE o::regrole::text !~ '^[0-9]+$'"
            ).fetchall()
            assert {desk.owner, desk.readonly} <= {r[0] for r in roles}
            connect = admin.execute("SELECT has_database_privilege(%s, 'CONNECT')", (desk.database,)).fetchone()
            assert connect == (False,)  # present but closed; an absent name raises "does not exist"
            admin.execute("RESET ROLE")
    finally:
        admin.rollback()
        admin.close()
