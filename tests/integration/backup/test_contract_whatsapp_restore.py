"""A project's whatsapp schema comes back from a backup as the engine made it: the layer's tables, with
their rows, policies, grants and publication membership."""

from __future__ import annotations

from pathlib import Path

from nextmavens.backup.pipeline import Target, backup_target
from nextmavens.backup.restore import choose_backup, restore_backup
from nextmavens.control.db import connect_control
from tests.integration.backup.conftest import backup_settings
from tests.support.projects import write_project


def test_contract_the_whatsapp_schema_survives_backup_and_restore(stage, standin, age_key, tmp_path: Path) -> None:
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [{"name": "main"}]})
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute(
            "INSERT INTO whatsapp.messages (instance, message_id, remote_jid, from_me, payload)"
            " VALUES ('main', 'A1', '5511@s.whatsapp.net', false, '{\"event\": \"messages.upsert\"}')"
        )
        owner.execute(
            "INSERT INTO whatsapp.events (instance, event, event_key, payload) VALUES ('main', 'x', 'k', '{}')"
        )
    settings = backup_settings(stage.server, standin, age_key[1], tmp_path, 64 * 1024)
    with connect_control(stage.server.dsn) as control:
        client = settings.telegram.client()
        made = backup_target(settings, control, client, Target(key="acme/shop", database="shop"))
        assert made.ok, made.error
        restore_backup(settings, control, client, choose_backup(control, "acme/shop", None), age_key[0], "shop_copy")

    def state(database: str) -> list[tuple]:
        return stage.sql(
            "SELECT 'table', c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity::text FROM pg_class c"
            " WHERE c.relnamespace = 'whatsapp'::regnamespace AND c.relkind = 'r'"
            " UNION ALL SELECT 'policy', tablename, policyname, roles::text FROM pg_policies"
            "  WHERE schemaname = 'whatsapp'"
            " UNION ALL SELECT 'published', tablename, pubname, '' FROM pg_publication_tables"
            "  WHERE schemaname = 'whatsapp'"
            " UNION ALL SELECT 'grant', table_name, grantee, privilege_type FROM information_schema.role_table_grants"
            "  WHERE table_schema = 'whatsapp' AND grantee <> 'nextmavens_layer'"
            " UNION ALL SELECT 'row', message_id, payload::text, '' FROM whatsapp.messages ORDER BY 1, 2, 3, 4",
            dbname=database,
        )

    live = state("shop")
    assert len(live) == 2 + 4 + 2 + 16 + 1
    assert state("shop_copy") == live
