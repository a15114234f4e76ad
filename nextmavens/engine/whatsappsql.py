"""SQL of a project's whatsapp schema (the layout its writers rely on, whatsapp/store.py among them).

Part of the layer (sqlgen.layer_statements): run as LAYER_ROLE inside the layer's transaction, by a superuser
session whose search_path is pg_catalog. Builds statements only; it runs nothing.
"""

from __future__ import annotations

from psycopg import sql

from nextmavens.engine.desired import WHATSAPP_TABLES, WHATSAPP_WRITERS
from nextmavens.engine.tenantsql import Statement, create_schema, grant_writers, secure_table
from nextmavens.naming import WHATSAPP_SCHEMA, ProjectNames

_FORWARD_COLUMNS = """
    received_at timestamptz NOT NULL DEFAULT now(),
    forward_pending boolean NOT NULL DEFAULT false,
    forward_attempts integer NOT NULL DEFAULT 0,
    forward_next_at timestamptz,
    forwarded_at timestamptz"""
_WHATSAPP_COLUMNS = {
    "messages": """
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL,
    message_id text NOT NULL,
    remote_jid text NOT NULL,
    from_me boolean NOT NULL,
    type text,
    text text,
    payload jsonb NOT NULL,
    sent_at timestamptz,"""
    + _FORWARD_COLUMNS
    + """,
    UNIQUE (instance, message_id)""",
    "events": """
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL,
    event text NOT NULL,
    state text,
    event_key text NOT NULL,
    payload jsonb NOT NULL,"""
    + _FORWARD_COLUMNS
    + """,
    UNIQUE (instance, event_key)""",
}
assert set(_WHATSAPP_COLUMNS) == set(WHATSAPP_TABLES)


def _whatsapp_table(table: str) -> sql.Identifier:
    return sql.Identifier(WHATSAPP_SCHEMA, table)


def whatsapp_statements(names: ProjectNames) -> list[Statement]:
    """The whatsapp schema, run as LAYER_ROLE inside the layer's transaction; every statement may run again.

    Nothing here is dropped or replaced: the tables hold the project's data, and a policy or publication
    entry already there is left as it is.
    """
    writers = (names.owner, *WHATSAPP_WRITERS)
    out = create_schema(WHATSAPP_SCHEMA)
    for table in WHATSAPP_TABLES:
        target = _whatsapp_table(table)
        out.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(_WHATSAPP_COLUMNS[table])))
        # what the forwarder scans: the rows still to be sent, by when they are due
        out.append(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (forward_next_at) WHERE forward_pending").format(
                sql.Identifier(f"{table}_forward_due"), target
            )
        )
        out += secure_table(WHATSAPP_SCHEMA, table, (*WHATSAPP_WRITERS, names.owner))
    out += grant_writers(WHATSAPP_SCHEMA, WHATSAPP_TABLES, writers)
    return out
