"""A restore never runs a tenant's SQL as a superuser: a project owner whose CHECK
constraint, domain, index expression and look-alike built-in functions try to make them superuser gets
nothing from `backup restore` or the `backup verify` drill, and their data comes back intact."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from nextmavens.backup.pipeline import Target, backup_target
from nextmavens.backup.restore import RestoreError, choose_backup, restore_backup
from nextmavens.backup.settings import BackupSettings
from nextmavens.backup.stats import table_stats
from nextmavens.backup.verify import drill
from nextmavens.control.db import connect_control
from tests.integration.backup.conftest import backup_settings
from tests.support.projects import write_project

# Tries every way back to the session's superuser, then to make the owner superuser; never fails, so
# the data loads whoever runs it. Records who it ran as.
ESCALATE = """
CREATE FUNCTION app.escalate(x int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE 'SET SESSION AUTHORIZATION DEFAULT'; EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE 'ALTER ROLE owner_shop SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;
    BEGIN INSERT INTO app.seen (who) VALUES (current_user); EXCEPTION WHEN others THEN NULL; END;
    RETURN true;
END
$f$;
CREATE FUNCTION app.lower_escalate(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM app.escalate(x); RETURN x; END
$f$;
CREATE TABLE app.seen (who text);
CREATE DOMAIN app.checked AS int CHECK (app.escalate(VALUE));
CREATE TABLE public.orders (
    id int PRIMARY KEY CHECK (app.escalate(id)),
    amount app.checked,
    note text
);
CREATE INDEX orders_expr ON public.orders (app.lower_escalate(id));
INSERT INTO public.orders SELECT g, g * 10, 'order ' || g FROM generate_series(1, 50) g;
"""

# The drill computes table figures as a superuser in the live and the restored database: a search_path
# set on the database must not make it call the owner's look-alikes of built-in functions.
LOOKALIKES = """
CREATE FUNCTION app.hash_record_extended(record, bigint) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM app.escalate(0); RETURN pg_catalog.hash_record_extended($1, $2); END
$f$;
CREATE FUNCTION app.pg_export_snapshot() RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM app.escalate(0); RETURN pg_catalog.pg_export_snapshot(); END
$f$;
CREATE FUNCTION app.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM app.escalate(0); RETURN pg_catalog.set_config($1, $2, $3); END
$f$;
ALTER DATABASE shop SET search_path = app, pg_catalog, public;
"""


@pytest.fixture
def shop(stage, standin, age_key, tmp_path: Path) -> tuple[BackupSettings, psycopg.Connection]:
    """A real project applied by the engine, whose owner planted the traps; backup settings for it."""
    write_project(stage.projects, "acme", "shop", database={"schemas": ["app"]})
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute(ESCALATE)
        owner.execute(LOOKALIKES)
    stage.sql("ALTER PUBLICATION supabase_realtime ADD TABLE public.orders", dbname="shop")  # Realtime on
    # Like Realtime's own tables (its migrations run as a superuser): rows naming the project's tables.
    stage.sql(
        "CREATE SCHEMA realtime; CREATE TABLE realtime.subscription (id int PRIMARY KEY, entity regclass);"
        " INSERT INTO realtime.subscription VALUES (1, 'public.orders')",
        dbname="shop",
    )
    settings = backup_settings(stage.server, standin, age_key[1], tmp_path, 64 * 1024)
    control = connect_control(stage.server.dsn)
    yield settings, control
    control.close()


def owner_is_superuser(stage) -> bool:
    return stage.sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'owner_shop'") == [(True,)]


def figures(stage, database: str) -> dict:
    with psycopg.connect(stage.server.dsn_for(database), options="-c search_path=pg_catalog") as conn:
        return table_stats(conn)


def test_contract_restore_runs_tenant_code_without_superuser(stage, shop, age_key) -> None:
    settings, control = shop
    client = settings.telegram.client()
    made = backup_target(settings, control, client, Target(key="acme/shop", database="shop"))
    assert made.ok, made.error
    assert not owner_is_superuser(stage)

    # One left by a restore that was killed: expired, swept by the next restore.
    stage.sql("CREATE ROLE nextmavens_restore_0badc0ffee00 LOGIN VALID UNTIL '2000-01-01'")
    stage.sql("GRANT CONNECT ON DATABASE shop TO nextmavens_restore_0badc0ffee00")
    record = choose_backup(control, "acme/shop", None)
    restore_backup(settings, control, client, record, age_key[0], "shop_copy")

    assert not owner_is_superuser(stage)
    # The owner's code did run (its CHECK, domain and index), as the owner's side, never a superuser.
    who = {row[0] for row in stage.sql("SELECT who FROM app.seen", dbname="shop_copy")}
    supers = {row[0] for row in stage.sql("SELECT rolname FROM pg_roles WHERE rolsuper")}
    assert who and not who & supers, who
    # Everything came back (app.seen grew while restoring: the traps write to it), owned as before, and
    # the temporary restore role is gone.
    restored, live = figures(stage, "shop_copy"), figures(stage, "shop")
    assert restored["public.orders"] == live["public.orders"] and live["public.orders"]["rows"] == 50
    assert set(restored) == set(live)
    owners = stage.sql(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relname IN ('orders', 'seen')"
        " ORDER BY 1",
        dbname="shop_copy",
    )
    assert owners == [("orders", "owner_shop"), ("seen", "owner_shop")]
    assert stage.sql("SELECT 1 FROM pg_class WHERE relname = 'orders_expr'", dbname="shop_copy") == [(1,)]
    triggers = stage.sql(
        "SELECT evtname, pg_get_userbyid(evtowner) FROM pg_event_trigger ORDER BY 1", dbname="shop_copy"
    )
    assert triggers == [("pgrst_ddl_watch", "nextmavens_layer"), ("pgrst_drop_watch", "nextmavens_layer")]
    subscribed = stage.sql("SELECT entity::text FROM realtime.subscription", dbname="shop_copy")
    assert subscribed == [("orders",)]  # search_path has public: the same table
    published = stage.sql("SELECT schemaname, tablename FROM pg_publication_tables", dbname="shop_copy")
    assert published == [("public", "orders")]
    assert stage.sql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'nextmavens\\_restore\\_%%'") == []


def test_contract_verify_drill_runs_tenant_code_without_superuser(stage, shop) -> None:
    settings, control = shop
    result = drill(settings, control, settings.telegram.client(), Target(key="acme/shop", database="shop"))
    # Only the traps' own log differs: it grew while the restore ran the owner's code.
    assert result.error != "" and [m["table"] for m in result.mismatches] == ["app.seen"], result.error
    assert result.tables >= 2
    assert not owner_is_superuser(stage)
    supers = {row[0] for row in stage.sql("SELECT rolname FROM pg_roles WHERE rolsuper")}
    assert not {row[0] for row in stage.sql("SELECT who FROM app.seen", dbname="shop")} & supers
    assert stage.sql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'nextmavens\\_restore\\_%%'") == []


def test_contract_restore_refuses_objects_of_an_unmanaged_superuser(stage, shop, age_key) -> None:
    """Objects owned by a superuser the platform does not manage are never replayed at all."""
    settings, control = shop
    stage.sql("CREATE ROLE intruder SUPERUSER NOLOGIN")
    stage.sql("CREATE TABLE public.planted (id int)", dbname="shop")
    stage.sql("ALTER TABLE public.planted OWNER TO intruder", dbname="shop")
    client = settings.telegram.client()
    assert backup_target(settings, control, client, Target(key="acme/shop", database="shop")).ok
    record = choose_backup(control, "acme/shop", None)
    with pytest.raises(RestoreError, match="intruder"):
        restore_backup(settings, control, client, record, age_key[0], "shop_refused")
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop_refused'") == []


def test_contract_restore_refuses_while_a_project_role_is_a_superuser(stage, shop, age_key) -> None:
    """A role of the project that is a superuser now (an escalation that already happened) is not one the
    restore role may act as: the restore stops and says why."""
    settings, control = shop
    client = settings.telegram.client()
    assert backup_target(settings, control, client, Target(key="acme/shop", database="shop")).ok
    stage.sql("ALTER ROLE owner_shop SUPERUSER")
    record = choose_backup(control, "acme/shop", None)
    with pytest.raises(RestoreError, match="owner_shop of acme/shop is a superuser"):
        restore_backup(settings, control, client, record, age_key[0], "shop_refused")
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = 'shop_refused'") == []
