"""Realtime (a stand-in in the sandbox) on the database side, as supabase/realtime@v2.34.47 (the pin) uses each
project database for postgres_changes: logical decoding (wal_level=logical), the `supabase_realtime`
publication, and a temporary wal2json slot per tenant, created, polled with format-version 2 and dropped.
Replication slots are cluster-wide, so each project needs a slot name of its own (naming.realtime_slot)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from nextmavens.edge.clients.tenants import desired_realtime_tenant
from nextmavens.naming import LAYER_ROLE
from tests.integration.contracts.projects import apply_two_projects
from tests.support.edgesamples import settings
from tests.support.engine import Stage

# lib/extensions/postgres_cdc_rls/replications.ex, prepare_replication (the third argument: a temporary slot).
PREPARE_REPLICATION = """select
        case when not exists (
          select 1
          from pg_replication_slots
          where slot_name = %s
        )
        then (
          select 1 from pg_create_logical_replication_slot(%s, 'wal2json', 'true')
        )
        else 1
        end;"""

# lib/realtime/tenants/repo/migrations/20230328144023_create_list_changes_function.ex (realtime.list_changes):
# the publication's actions and tables, then pg_logical_slot_get_changes with wal2json's format-version 2.
# Realtime quotes table names with its own realtime.quote_wal2json; the tables here need no quoting.
LIST_CHANGES = """
with pub as (
  select
    concat_ws(
      ',',
      case when bool_or(pubinsert) then 'insert' else null end,
      case when bool_or(pubupdate) then 'update' else null end,
      case when bool_or(pubdelete) then 'delete' else null end
    ) as w2j_actions,
    coalesce(
      string_agg(format('%%s.%%s', schemaname, tablename), ',')
        filter (where ppt.tablename is not null and ppt.tablename not like '%% %%'),
      ''
    ) w2j_add_tables
  from pg_publication pp left join pg_publication_tables ppt on pp.pubname = ppt.pubname
  where pp.pubname = %s
  group by pp.pubname
  limit 1
)
select x.data from pub, pg_logical_slot_get_changes(
  %s, null, %s,
  'include-pk', 'true',
  'include-transaction', 'false',
  'include-timestamp', 'true',
  'include-type-oids', 'true',
  'format-version', '2',
  'actions', pub.w2j_actions,
  'add-tables', pub.w2j_add_tables
) x
"""


def _wal2json_where_the_server_looks(stage: Stage) -> None:
    """wal2json is an output plugin (a .so, no .control): it must be in this server's own pkglibdir."""
    (libdir,) = stage.sql("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")[0]
    if not (Path(libdir) / "wal2json.so").exists():
        pytest.fail(f"wal2json.so is not in {libdir}: install postgresql-15-wal2json (scripts/bootstrap)")


def test_contract_realtime_wal2json_slot_per_project_database(stage: Stage) -> None:
    projects = apply_two_projects(stage)
    # Logical decoding needs wal_level=logical (a server start option: LocalPostgres sets it).
    assert stage.sql("SHOW wal_level") == [("logical",)]
    _wal2json_where_the_server_looks(stage)
    tenants = {ref: desired_realtime_tenant(settings(), p.manifest, p.secrets) for ref, p in projects.items()}
    slots = {ref: tenant["extensions"][0]["settings"]["slot_name"] for ref, tenant in tenants.items()}
    assert slots == {ref: p.names.realtime_slot for ref, p in projects.items()}
    assert len(set(slots.values())) == len(slots)
    sessions: dict[str, psycopg.Connection] = {}
    try:
        for ref, project in projects.items():
            cdc = tenants[ref]["extensions"][0]["settings"]
            assert cdc["db_name"] == project.names.database and cdc["publication"] == "supabase_realtime"
            assert stage.sql(
                "SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = %s",
                (cdc["publication"],),
                dbname=project.names.database,
            ) == [(LAYER_ROLE,)]
            with stage.login(project.names.owner, project.names.database, ref) as owner:
                owner.execute("CREATE TABLE messages (id int PRIMARY KEY, body text)")
            # Realtime logs in as the platform's superuser (settings.realtime_db_user, as on Supabase); the
            # publication is the platform's too, so a superuser adds the table to it.
            conn = psycopg.connect(stage.server.dsn_for(project.names.database), autocommit=True)
            sessions[ref] = conn
            conn.execute("ALTER PUBLICATION supabase_realtime ADD TABLE public.messages")
            conn.execute(PREPARE_REPLICATION, (slots[ref], slots[ref]))
            conn.execute(PREPARE_REPLICATION, (slots[ref], slots[ref]))  # a poller restarting: no second slot
        # Both projects' slots at once, each a temporary wal2json slot of its own database.
        assert stage.sql(
            "SELECT slot_name::text, database::text, plugin::text, slot_type, temporary FROM pg_replication_slots"
            " ORDER BY 1"
        ) == sorted((slots[ref], p.names.database, "wal2json", "logical", True) for ref, p in projects.items())
        for ref, project in projects.items():
            with stage.login(project.names.owner, project.names.database, ref) as owner:
                # Decoding reads only flushed WAL; the tests' fast servers commit asynchronously by default.
                owner.execute("SET synchronous_commit = on")
                owner.execute("INSERT INTO messages VALUES (1, %s)", (f"hello {ref}",))
        for ref, conn in sessions.items():
            rows = conn.execute(LIST_CHANGES, ("supabase_realtime", slots[ref], 100)).fetchall()
            records = [json.loads(data) for (data,) in rows]
            assert [(r["action"], r["schema"], r["table"]) for r in records] == [("I", "public", "messages")]
            assert {c["name"]: c["value"] for c in records[0]["columns"]} == {"id": 1, "body": f"hello {ref}"}
            assert records[0]["pk"] == [{"name": "id", "type": "integer", "typeoid": 23}]
            assert conn.execute(LIST_CHANGES, ("supabase_realtime", slots[ref], 100)).fetchall() == []  # consumed
        # A tenant's slot is held by its own session: another project's poller cannot read it.
        # (From a session of its own: an error drops the temporary slots of the session it happens in.)
        with (
            psycopg.connect(stage.server.dsn_for(projects["shop"].names.database), autocommit=True) as other,
            pytest.raises(psycopg.errors.ObjectInUse, match="is active for PID"),
        ):
            other.execute("SELECT * FROM pg_logical_slot_get_changes(%s, null, 1)", (slots["desk"],))
        # lib/realtime/database.ex: the slot is dropped when the tenant's poller stops.
        for ref, conn in sessions.items():
            conn.execute("select pg_drop_replication_slot(%s)", (slots[ref],))
        assert stage.sql("SELECT slot_name FROM pg_replication_slots") == []
    finally:
        for conn in sessions.values():
            conn.close()
