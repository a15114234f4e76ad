"""Apply against a real PostgreSQL: converge, converge again with nothing to do, repair drift."""

from __future__ import annotations

import json

import pytest

from nextmavens.control.db import connect_cluster
from tests.support.engine import Stage
from tests.support.projects import write_project


@pytest.fixture
def two_projects(stage: Stage) -> Stage:
    write_project(stage.projects, "acme", "shop", database={"extensions": ["pgcrypto", "pg_trgm"], "schemas": ["app"]})
    write_project(stage.projects, "globex", "desk")
    return stage


def test_apply_twice_then_the_plan_is_empty(two_projects: Stage) -> None:
    first = two_projects.apply()
    assert len(first.plan.changes) > 20
    assert two_projects.plan().empty
    result = two_projects.cli("plan")
    assert result.returncode == 0, result.stderr
    assert "No changes" in result.stdout


def test_plan_exit_codes_and_json_shape(two_projects: Stage) -> None:
    pending = two_projects.cli("plan", "--json")
    assert pending.returncode == 2
    document = json.loads(pending.stdout)
    assert document["changes"]
    assert set(document["changes"][0]) >= {"project", "action", "kind", "detail"}
    assert {c["project"] for c in document["changes"]} == {"cluster", "acme", "globex", "acme/shop", "globex/desk"}
    assert {c["kind"] for c in document["changes"] if c["project"] in ("acme", "globex")} == {"org"}
    two_projects.cli("apply", "--yes", check=True)
    assert two_projects.cli("plan", "--json").returncode == 0
    broken = two_projects.cli("plan", "--dsn", "host=127.0.0.1 port=1 user=x dbname=y connect_timeout=2")
    assert broken.returncode == 1
    assert "cannot reach PostgreSQL" in broken.stderr


def test_the_project_database_holds_the_supabase_layer(two_projects: Stage) -> None:
    two_projects.apply()
    schemas = {r[0] for r in two_projects.sql("SELECT nspname FROM pg_namespace", dbname="shop")}
    assert {"auth", "storage", "extensions", "graphql_public", "pgbouncer", "app"} <= schemas
    owners = dict(
        two_projects.sql(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname IN ('auth', 'storage', 'app')",
            dbname="shop",
        )
    )
    assert owners == {"auth": "auth_admin_shop", "storage": "storage_admin_shop", "app": "owner_shop"}
    extensions = {
        r[0]
        for r in two_projects.sql(
            "SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE n.nspname = 'extensions'",
            dbname="shop",
        )
    }
    assert extensions == {"pgcrypto", "pg_trgm"}
    assert two_projects.sql("SELECT pubname FROM pg_publication", dbname="shop") == [("supabase_realtime",)]
    triggers = {r[0] for r in two_projects.sql("SELECT evtname FROM pg_event_trigger", dbname="shop")}
    assert triggers == {"pgrst_ddl_watch", "pgrst_drop_watch"}
    settings = two_projects.sql(
        "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
        " WHERE d.datname = 'shop'"
    )
    assert settings == [(["app.settings.jwt_exp=3600"],)]


def test_ddl_in_a_project_database_notifies_postgrest(two_projects: Stage) -> None:
    two_projects.apply()
    with (
        two_projects.login("owner_shop", "shop", "shop") as owner,
        two_projects.login("owner_shop", "shop", "shop") as listener,
    ):
        listener.execute("LISTEN pgrst")
        owner.execute("CREATE TABLE notes (id int)")
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in notes] == [("pgrst", "reload schema")]


def test_drift_shows_in_the_plan_and_apply_repairs_it(two_projects: Stage) -> None:
    two_projects.apply()
    two_projects.sql("REVOKE USAGE ON SCHEMA auth FROM anon", dbname="shop")
    two_projects.sql("DROP SCHEMA storage CASCADE", dbname="shop")
    two_projects.sql("DROP EXTENSION pg_trgm", dbname="shop")
    two_projects.sql("ALTER ROLE authenticator_desk INHERIT BYPASSRLS")
    two_projects.sql("ALTER ROLE auth_admin_desk SET search_path = public")
    two_projects.sql("GRANT CONNECT ON DATABASE shop TO PUBLIC")
    two_projects.sql("REVOKE CONNECT ON DATABASE desk FROM authenticator_desk")
    two_projects.sql("ALTER DATABASE desk CONNECTION LIMIT 3")
    two_projects.sql("ALTER ROLE owner_shop PASSWORD 'guessable'")

    changes = {(c.project, c.kind, c.target): c.detail for c in two_projects.plan().changes}
    assert "schema privileges granted to anon: 4 of 6" in changes[("acme/shop", "layer", "shop")]
    assert "schemas owned by storage_admin_shop: 0 of 1" in changes[("acme/shop", "layer", "shop")]
    assert "missing extension(s): pg_trgm" in changes[("acme/shop", "layer", "shop")]
    assert changes[("globex/desk", "role", "authenticator_desk")] == "INHERIT: yes -> no; BYPASSRLS: yes -> no"
    assert changes[("globex/desk", "role_setting", "auth_admin_desk")] == "search_path: public -> auth"
    assert "FROM PUBLIC" in changes[("acme/shop", "grant", "shop")]
    assert ("globex/desk", "database", "desk") in changes
    assert changes[("acme/shop", "password", "owner_shop")] == "password differs from the stored secret"
    assert changes[("globex/desk", "grant", "desk")] == "GRANT CONNECT ON DATABASE desk TO authenticator_desk"
    assert len(two_projects.plan().changes) == 7

    two_projects.apply()
    assert two_projects.plan().empty
    assert two_projects.sql("SELECT has_schema_privilege('anon', 'auth', 'USAGE')", dbname="shop") == [(True,)]
    assert two_projects.sql("SELECT datconnlimit FROM pg_database WHERE datname = 'desk'") == [(60,)]
    with two_projects.login("owner_shop", "shop", "shop") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("owner_shop",)


def test_a_changed_manifest_is_a_targeted_update(two_projects: Stage) -> None:
    two_projects.apply()
    write_project(
        two_projects.projects,
        "globex",
        "desk",
        database={"connection_limit": 25, "schemas": ["crm"]},
        api={"jwt_expiry": 7200},
    )
    changes = [(c.kind, c.detail) for c in two_projects.plan().changes if c.project == "globex/desk"]
    assert ("database", "connection limit: 60 -> 25") in changes
    assert ("database_setting", "app.settings.jwt_exp: 3600 -> 7200") in changes
    assert any(kind == "layer" and "schemas owned by owner_desk: 0 of 1" in detail for kind, detail in changes)
    two_projects.apply()
    assert two_projects.plan().empty
    assert two_projects.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'crm'", dbname="desk") == [(1,)]


def test_suspended_projects_cannot_log_in_and_keep_their_data(two_projects: Stage) -> None:
    two_projects.apply()
    with two_projects.login("owner_desk", "desk", "desk") as conn:
        conn.execute("CREATE TABLE tickets (id int); INSERT INTO tickets VALUES (1), (2)")
    session = two_projects.login("authenticator_desk", "desk", "desk")
    write_project(two_projects.projects, "globex", "desk", state="suspended")
    plan = two_projects.plan()
    kinds = {(c.kind, c.target) for c in plan.changes}
    assert ("sessions", "authenticator_desk") in kinds
    two_projects.apply()
    assert session.closed or _session_is_dead(session)
    with pytest.raises(Exception, match="not permitted to log in"):
        two_projects.login("owner_desk", "desk", "desk")
    assert two_projects.sql("SELECT count(*) FROM tickets", dbname="desk") == [(2,)]
    assert two_projects.plan().empty

    write_project(two_projects.projects, "globex", "desk", state="active")
    two_projects.apply()
    with two_projects.login("owner_desk", "desk", "desk") as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (2,)


def _session_is_dead(conn: object) -> bool:
    try:
        conn.execute("SELECT 1")  # type: ignore[attr-defined]
    except Exception:
        return True
    return False


def test_absent_or_deleted_projects_are_orphans_and_never_dropped(two_projects: Stage) -> None:
    two_projects.apply()
    write_project(two_projects.projects, "globex", "desk", state="absent")
    (two_projects.projects / "acme" / "shop.yaml").unlink()
    plan = two_projects.plan()
    assert plan.empty
    orphans = {n.project: n.detail for n in plan.notices if n.kind == "orphan"}
    assert set(orphans) == {"acme/shop", "globex/desk"}
    assert "nextmavens destroy acme/shop --confirm acme/shop" in orphans["acme/shop"]
    two_projects.apply()
    databases = {r[0] for r in two_projects.sql("SELECT datname FROM pg_database")}
    assert {"shop", "desk"} <= databases
    roles = {r[0] for r in two_projects.sql("SELECT rolname FROM pg_roles WHERE rolcanlogin")}
    assert {"owner_shop", "owner_desk"} <= roles
    cli = two_projects.cli("plan")
    assert cli.returncode == 0
    assert "orphan" in cli.stdout


def test_an_extension_the_server_lacks_is_a_clear_error_and_nothing_changes(stage: Stage) -> None:
    write_project(stage.projects, "acme", "geo", database={"extensions": ["postgis"]})
    stage.plan()  # first use: creates the control database, whose migrations add the service's role
    before = stage.sql("SELECT count(*) FROM pg_roles")
    result = stage.cli("apply", "--yes")
    assert result.returncode == 1
    assert "postgis" in result.stderr and "not installed" in result.stderr
    assert stage.sql("SELECT count(*) FROM pg_roles") == before


def test_an_extension_the_owner_created_first_is_a_plan_error_not_endless_changes(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute("CREATE EXTENSION pg_trgm")  # a trusted extension: the database owner may create it
    write_project(stage.projects, "acme", "shop", database={"extensions": ["uuid-ossp", "pgcrypto", "pg_trgm"]})
    plan = stage.plan()
    assert plan.changes == ()
    [error] = plan.errors
    assert error.startswith("projects/acme/shop.yaml: database.extensions: ")
    assert "extension 'pg_trgm' already exists in database 'shop', owned by owner_shop in schema public" in error
    result = stage.cli("plan")
    assert result.returncode == 1 and "'pg_trgm'" in result.stderr and "owned by owner_shop" in result.stderr
    assert stage.cli("apply", "--yes").returncode == 1
    # Once the project's copy is gone, the platform creates its own, and the plan settles.
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute("DROP EXTENSION pg_trgm")
    stage.apply()
    assert stage.plan().empty
    owned = "SELECT pg_get_userbyid(extowner), extnamespace::regnamespace::text FROM pg_extension WHERE extname = %s"
    assert stage.sql(owned, ("pg_trgm",), dbname="shop") == [("nextmavens_layer", "extensions")]


def test_swapping_one_extension_for_another_creates_the_new_one_and_keeps_the_old(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop", database={"extensions": ["uuid-ossp", "pgcrypto"]})
    stage.apply()
    # Same number of extensions, one name changed: the count of extensions is unchanged.
    write_project(stage.projects, "acme", "shop", database={"extensions": ["uuid-ossp", "pg_trgm"]})
    plan = stage.plan()
    assert plan.errors == ()
    assert [c.kind for c in plan.changes if c.kind == "layer"] == ["layer"]
    [layer] = [c for c in plan.changes if c.kind == "layer"]
    assert "missing extension(s): pg_trgm" in layer.detail
    [kept] = [n.detail for n in plan.notices if n.project == "acme/shop"]
    assert "pgcrypto" in kept and "kept" in kept
    stage.apply()
    placed = "SELECT e.extname, pg_get_userbyid(e.extowner), n.nspname FROM pg_extension e"
    placed += " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1"
    assert stage.sql(placed, dbname="shop") == [
        ("pg_trgm", "nextmavens_layer", "extensions"),
        ("pgcrypto", "nextmavens_layer", "extensions"),  # removed from the manifest, never dropped
        ("uuid-ossp", "nextmavens_layer", "extensions"),
    ]
    after = stage.plan()
    assert after.empty and after.errors == ()
    # The removed extension stays listed as kept, on every plan, until someone drops it on purpose.
    assert any("pgcrypto" in n.detail for n in after.notices if n.project == "acme/shop")


def test_settings_the_owner_puts_on_its_database_do_not_steer_the_platforms_sessions(stage: Stage) -> None:
    """A database owner may ALTER DATABASE ... SET: timeouts that cancel the platform's statements or end its
    sessions, read-only transactions, even the role its sessions run as. The platform's sessions inside a
    project database (reading extensions, the layer step) pin all of these as client options."""
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        for setting in (
            "statement_timeout = '1ms'",
            "lock_timeout = '1ms'",
            "idle_session_timeout = '1ms'",
            "idle_in_transaction_session_timeout = '1ms'",
            "default_transaction_read_only = on",
            "role = 'owner_shop'",
        ):
            owner.execute(f"ALTER DATABASE shop SET {setting}")
    # A swap makes the plan read the database's extensions by name, and the apply run the layer step there.
    write_project(stage.projects, "acme", "shop", database={"extensions": ["uuid-ossp", "pg_trgm"]})
    assert any(c.kind == "layer" for c in stage.plan().changes)
    stage.apply()
    assert stage.plan().empty
    owned = "SELECT pg_get_userbyid(extowner), extnamespace::regnamespace::text FROM pg_extension WHERE extname = %s"
    with connect_cluster(stage.server.dsn, "shop", trusted_path=True) as conn:
        assert conn.execute("SELECT current_user = session_user").fetchone() == (True,)
        assert conn.execute(owned, ("pg_trgm",)).fetchall() == [("nextmavens_layer", "extensions")]


def test_an_extension_that_came_with_another_is_not_listed_as_kept(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop", database={"extensions": ["uuid-ossp", "pgcrypto"]})
    stage.apply()
    # As the layer would create a declared extension that requires another (CASCADE creates cube too).
    stage.sql(
        "BEGIN; SET LOCAL ROLE nextmavens_layer; CREATE EXTENSION earthdistance WITH SCHEMA extensions CASCADE; COMMIT",
        dbname="shop",
    )
    plan = stage.plan()
    assert plan.empty
    [kept] = [n.detail for n in plan.notices if n.project == "acme/shop"]
    assert kept.startswith("extension(s) earthdistance in database 'shop' are the platform's")  # cube: required
