"""A project's `whatsapp` schema as the agreed layout describes it, created straight in a test's database.

Until the engine's database step creates these tables itself, tests that need them run this DDL (as the cluster's
superuser, in the project's database); once it does, apply creates them and these tests can drop this file.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from nextmavens.naming import LAYER_ROLE, project_names

TABLES = """
CREATE SCHEMA IF NOT EXISTS whatsapp AUTHORIZATION {layer};
CREATE TABLE IF NOT EXISTS whatsapp.messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL,
    message_id text NOT NULL,
    remote_jid text NOT NULL,
    from_me boolean NOT NULL,
    type text,
    text text,
    payload jsonb NOT NULL,
    sent_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    forward_pending boolean NOT NULL DEFAULT false,
    forward_attempts integer NOT NULL DEFAULT 0,
    forward_next_at timestamptz,
    forwarded_at timestamptz,
    UNIQUE (instance, message_id)
);
CREATE TABLE IF NOT EXISTS whatsapp.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL,
    event text NOT NULL,
    state text,
    event_key text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    forward_pending boolean NOT NULL DEFAULT false,
    forward_attempts integer NOT NULL DEFAULT 0,
    forward_next_at timestamptz,
    forwarded_at timestamptz,
    UNIQUE (instance, event_key)
);
CREATE INDEX IF NOT EXISTS messages_forward ON whatsapp.messages (forward_next_at) WHERE forward_pending;
CREATE INDEX IF NOT EXISTS events_forward ON whatsapp.events (forward_next_at) WHERE forward_pending;
ALTER TABLE whatsapp.messages OWNER TO {layer};
ALTER TABLE whatsapp.events OWNER TO {layer};
ALTER TABLE whatsapp.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_role_all ON whatsapp.messages FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY service_role_all ON whatsapp.events FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON whatsapp.messages FOR ALL TO {owner} USING (true) WITH CHECK (true);
CREATE POLICY owner_all ON whatsapp.events FOR ALL TO {owner} USING (true) WITH CHECK (true);
GRANT USAGE ON SCHEMA whatsapp TO service_role, {owner};
GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp.messages, whatsapp.events TO service_role, {owner};
"""


def create_whatsapp_tables(dsn_for_database: str, ref: str) -> None:
    """The layout's schema, tables, index, RLS policies and grants (not the publication: nothing here reads it)."""
    names = project_names(ref)
    statements = sql.SQL(TABLES).format(layer=sql.Identifier(LAYER_ROLE), owner=sql.Identifier(names.owner))
    with psycopg.connect(dsn_for_database, autocommit=True) as conn:
        conn.execute(statements)
