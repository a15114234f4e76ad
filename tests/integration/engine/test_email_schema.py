"""The email schema apply creates in a project database whose manifest declares `email`, against a real PostgreSQL:
owned by the layer role, RLS on, in the supabase_realtime publication, only where declared, beside the whatsapp one."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests.support.engine import Stage
from tests.support.projects import write_project

EMAIL = {"from_domain": "mail.shop.example", "from_name": "Shop", "inbound_addresses": ["help@shop.example"]}
TABLES = ["events", "inbound", "messages"]
_INSERT = (
    "INSERT INTO email.messages (idempotency_key, to_addresses, subject, template) VALUES (%s, '{a@b.example}', 'Hi',"
    " 'welcome') ON CONFLICT (idempotency_key) DO NOTHING"
)


@pytest.fixture
def shop(stage: Stage) -> Stage:
    write_project(stage.projects, "acme", "shop", email=EMAIL)
    write_project(stage.projects, "acme", "plain")
    first = stage.apply()
    [layer] = [c for c in first.plan.changes if c.kind == "layer" and c.project == "acme/shop"]
    assert "email schema (tables email.messages and email.events and email.inbound)" in layer.detail
    return stage


def test_apply_creates_the_schema_and_a_second_apply_changes_nothing(shop: Stage) -> None:
    assert shop.plan().empty
    tables = shop.sql(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'email' AND c.relkind = 'r' ORDER BY 1",
        dbname="shop",
    )
    assert tables == [(t, "nextmavens_layer", True) for t in TABLES]
    published = shop.sql(
        "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime' AND schemaname = 'email'"
        " ORDER BY 1",
        dbname="shop",
    )
    assert [t for (t,) in published] == TABLES
    policies = shop.sql(
        "SELECT tablename, roles::text[] FROM pg_policies WHERE schemaname = 'email' ORDER BY 1, 2", dbname="shop"
    )
    assert policies == [(t, [role]) for t in TABLES for role in ("owner_shop", "service_role")]
    columns = shop.sql(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'email' AND table_name = 'messages' ORDER BY ordinal_position",
        dbname="shop",
    )
    assert [c for (c,) in columns] == [
        "id",
        "idempotency_key",
        "to_addresses",
        "subject",
        "template",
        "status",
        "provider_id",
        "error",
        "created_at",
        "sent_at",
        "status_at",
    ]
    assert shop.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'email'", dbname="plain") == []


def test_the_owner_writes_rows_the_client_roles_see_nothing_and_statuses_are_checked(shop: Stage) -> None:
    with shop.login("owner_shop", "shop", "shop") as owner:
        assert owner.execute(_INSERT, ("k1",)).rowcount == 1
        assert owner.execute(_INSERT, ("k1",)).rowcount == 0
        with pytest.raises(psycopg.errors.CheckViolation):
            owner.execute("UPDATE email.messages SET status = 'lost'")
    with shop.login("authenticator_shop", "shop", "shop") as api:
        for role in ("anon", "authenticated"):
            api.execute(f"SET ROLE {role}")
            for table in TABLES:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    api.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("email", table)))


@pytest.mark.parametrize(
    "statement",
    ["DROP TABLE email.inbound", "ALTER TABLE email.messages DISABLE ROW LEVEL SECURITY", "TRUNCATE email.events"],
)
def test_the_owner_cannot_change_the_tables(shop: Stage, statement: str) -> None:
    with shop.login("owner_shop", "shop", "shop") as owner, pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute(statement)


def test_email_beside_whatsapp_and_declared_later(shop: Stage) -> None:
    write_project(shop.projects, "acme", "plain", whatsapp={"instances": [{"name": "main"}]})
    shop.apply()
    write_project(
        shop.projects,
        "acme",
        "plain",
        whatsapp={"instances": [{"name": "main"}]},
        email={"from_domain": "plain.example", "from_name": "Plain"},
    )
    [change] = [c for c in shop.plan().changes if c.kind == "layer"]
    assert change.project == "acme/plain" and "the email schema" in change.detail
    shop.apply()
    assert shop.plan().empty
    shop.sql('DROP POLICY "service_role writes" ON email.inbound', dbname="plain")
    [change] = shop.plan().changes
    assert change.detail.startswith("restore the whatsapp schema and the email schema: ")
    shop.apply()
    assert shop.plan().empty
