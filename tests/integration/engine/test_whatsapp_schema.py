"""The whatsapp schema apply creates in a project database with WhatsApp instances, against a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.engine import Stage
from tests.support.projects import write_project

MAIN = {"instances": [{"name": "main"}]}
_INSERT = (
    "INSERT INTO whatsapp.messages (instance, message_id, remote_jid, from_me, payload)"
    " VALUES ('main', %s, '5511@s.whatsapp.net', false, '{}') ON CONFLICT (instance, message_id) DO NOTHING"
)


@pytest.fixture
def shop(stage: Stage) -> Stage:
    write_project(stage.projects, "acme", "shop", whatsapp=MAIN)
    write_project(stage.projects, "acme", "plain")
    first = stage.apply()
    [layer] = [c for c in first.plan.changes if c.kind == "layer" and c.project == "acme/shop"]
    assert "whatsapp schema" in layer.detail
    return stage


def test_apply_creates_the_schema_and_a_second_apply_changes_nothing(shop: Stage) -> None:
    assert shop.plan().empty
    owners = shop.sql(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'whatsapp' AND c.relkind = 'r' ORDER BY 1",
        dbname="shop",
    )
    assert owners == [("events", "nextmavens_layer", True), ("messages", "nextmavens_layer", True)]
    schema_owner = "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'whatsapp'"
    assert shop.sql(schema_owner, dbname="shop") == [("nextmavens_layer",)]
    published = shop.sql(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime' ORDER BY 2",
        dbname="shop",
    )
    assert published == [("whatsapp", "events"), ("whatsapp", "messages")]
    policies = shop.sql(
        "SELECT tablename, roles::text[], cmd FROM pg_policies WHERE schemaname = 'whatsapp' ORDER BY 1, 2",
        dbname="shop",
    )
    assert policies == [
        (table, [role], "ALL") for table in ("events", "messages") for role in ("owner_shop", "service_role")
    ]
    columns = shop.sql(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'whatsapp' AND table_name = 'messages' ORDER BY ordinal_position",
        dbname="shop",
    )
    assert [c for (c,) in columns] == [
        "id",
        "instance",
        "message_id",
        "remote_jid",
        "from_me",
        "type",
        "text",
        "payload",
        "sent_at",
        "received_at",
        "forward_pending",
        "forward_attempts",
        "forward_next_at",
        "forwarded_at",
    ]
    indexes = shop.sql(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'whatsapp' AND indexdef LIKE %s ORDER BY 1",
        ("%WHERE%",),
        dbname="shop",
    )
    assert [i for (i,) in indexes] == [
        f"CREATE INDEX {t}_forward_due ON whatsapp.{t} USING btree (forward_next_at) WHERE forward_pending"
        for t in ("events", "messages")
    ]


def test_a_project_without_instances_gets_no_schema(shop: Stage) -> None:
    assert shop.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'whatsapp'", dbname="plain") == []
    assert shop.sql("SELECT count(*) FROM pg_publication_tables", dbname="plain") == [(0,)]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TRIGGER spy AFTER INSERT ON whatsapp.messages FOR EACH ROW EXECUTE FUNCTION spy()",
        "ALTER TABLE whatsapp.messages DISABLE ROW LEVEL SECURITY",
        "DROP TABLE whatsapp.messages",
        "ALTER TABLE whatsapp.events ADD COLUMN note text",
        "ALTER PUBLICATION supabase_realtime DROP TABLE whatsapp.messages",
        "DROP SCHEMA whatsapp CASCADE",
        "CREATE TABLE whatsapp.extra (id int)",
        "TRUNCATE whatsapp.events",
    ],
)
def test_the_owner_cannot_change_the_tables(shop: Stage, statement: str) -> None:
    with shop.login("owner_shop", "shop", "shop") as owner:
        owner.execute("CREATE FUNCTION spy() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute(statement)
    assert shop.plan().empty


def test_the_owner_writes_rows_and_a_duplicate_adds_none(shop: Stage) -> None:
    with shop.login("owner_shop", "shop", "shop") as owner:
        assert owner.execute(_INSERT, ("A1",)).rowcount == 1
        assert owner.execute(_INSERT, ("A1",)).rowcount == 0
        assert owner.execute("SELECT count(*) FROM whatsapp.messages").fetchone() == (1,)
        owner.execute("UPDATE whatsapp.messages SET forward_attempts = forward_attempts + 1")
        assert owner.execute("SELECT forward_attempts FROM whatsapp.messages").fetchone() == (1,)
        owner.execute("DELETE FROM whatsapp.messages")
        assert owner.execute("SELECT count(*) FROM whatsapp.messages").fetchone() == (0,)


def test_service_role_reads_and_writes_and_the_client_roles_see_nothing(shop: Stage) -> None:
    with shop.login("authenticator_shop", "shop", "shop") as api:
        api.execute("SET ROLE service_role")
        assert api.execute(_INSERT, ("S1",)).rowcount == 1
        assert api.execute("SELECT message_id FROM whatsapp.messages").fetchall() == [("S1",)]
        for role in ("anon", "authenticated"):
            api.execute(f"SET ROLE {role}")
            for statement in ("SELECT * FROM whatsapp.messages", "SELECT * FROM whatsapp.events"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    api.execute(statement)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                api.execute(_INSERT, ("X",))


def test_an_instance_declared_later_adds_the_schema_and_removing_it_keeps_the_rows(shop: Stage) -> None:
    write_project(shop.projects, "acme", "plain", whatsapp=MAIN)
    changes = [c for c in shop.plan().changes if c.kind == "layer"]
    assert [(c.project, c.action, c.detail) for c in changes] == [
        ("acme/plain", "create", "create whatsapp schema (tables whatsapp.messages and whatsapp.events)")
    ]
    shop.apply()
    assert shop.plan().empty
    with shop.login("owner_plain", "plain", "plain") as owner:
        owner.execute(_INSERT, ("P1",))

    write_project(shop.projects, "acme", "plain")
    assert shop.plan().empty
    shop.apply()
    assert shop.sql("SELECT message_id FROM whatsapp.messages", dbname="plain") == [("P1",)]


def test_a_missing_piece_is_restored_by_the_next_apply(shop: Stage) -> None:
    shop.sql('DROP POLICY "owner_shop writes" ON whatsapp.events', dbname="shop")
    shop.sql("ALTER PUBLICATION supabase_realtime DROP TABLE whatsapp.events", dbname="shop")
    [change] = shop.plan().changes
    assert (change.action, change.kind) == ("update", "layer")
    assert change.detail == "restore the whatsapp schema: row security policies for owner_shop: 1 of 2"
    shop.apply()
    assert shop.plan().empty
    assert shop.sql("SELECT count(*) FROM pg_policies WHERE schemaname = 'whatsapp'", dbname="shop") == [(4,)]
    published = "SELECT count(*) FROM pg_publication_tables WHERE schemaname = 'whatsapp'"
    assert shop.sql(published, dbname="shop") == [(2,)]


def test_a_whatsapp_schema_the_owner_made_first_is_never_taken_over(shop: Stage) -> None:
    with shop.login("owner_plain", "plain", "plain") as owner:
        owner.execute("CREATE SCHEMA whatsapp; CREATE TABLE whatsapp.messages (id int)")
    write_project(shop.projects, "acme", "plain", whatsapp=MAIN)
    with pytest.raises(psycopg.errors.RaiseException, match="owned by owner_plain, not by nextmavens_layer"):
        shop.apply()
    owner_of = "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'whatsapp'"
    assert shop.sql(owner_of, dbname="plain") == [("owner_plain",)]
