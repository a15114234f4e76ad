"""SQL of a project's whatsapp schema (the layout its writers rely on, whatsapp/store.py among them).

Part of the layer (sqlgen.layer_statements): run as LAYER_ROLE inside the layer's transaction, by a superuser
session whose search_path is pg_catalog. Builds statements only; it runs nothing.
"""

from __future__ import annotations

from psycopg import sql

from nextmavens.engine.desired import LAYER_ROLE, WHATSAPP_TABLES, WHATSAPP_WRITERS
from nextmavens.naming import WHATSAPP_SCHEMA, ProjectNames

Statement = sql.Composed | sql.SQL  # as sqlgen's

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
    schema = sql.Identifier(WHATSAPP_SCHEMA)
    writers = sql.SQL(", ").join(sql.Identifier(r) for r in (names.owner, *WHATSAPP_WRITERS))
    # A whatsapp schema created by someone else (the project's owner may create schemas in its database)
    # is never taken over: the transaction fails and names it.
    out: list[Statement] = [
        sql.SQL(
            "DO $do$ DECLARE found text; BEGIN"
            " SELECT pg_get_userbyid(nspowner) INTO found FROM pg_namespace WHERE nspname = {name};"
            " IF found IS NOT NULL AND found <> {layer} THEN RAISE EXCEPTION"
            " 'schema % in database % is owned by %, not by %: the platform creates it itself and never takes"
            " over one it did not create; rename or drop that schema (after saving its data) and apply again',"
            " {name}, current_database(), found, {layer}; END IF; END $do$"
        ).format(name=sql.Literal(WHATSAPP_SCHEMA), layer=sql.Literal(LAYER_ROLE)),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, sql.Identifier(LAYER_ROLE)),
    ]
    for table in WHATSAPP_TABLES:
        target = _whatsapp_table(table)
        out.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(_WHATSAPP_COLUMNS[table])))
        # what the forwarder scans: the rows still to be sent, by when they are due
        out.append(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (forward_next_at) WHERE forward_pending").format(
                sql.Identifier(f"{table}_forward_due"), target
            )
        )
        out.append(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target))
        for role in (*WHATSAPP_WRITERS, names.owner):
            out.append(_create_policy_if_absent(table, f"{role} writes", role))
        out.append(
            sql.SQL(
                "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication_rel r"
                " JOIN pg_publication p ON p.oid = r.prpubid"
                " WHERE p.pubname = 'supabase_realtime' AND r.prrelid = {}::regclass)"
                " THEN ALTER PUBLICATION supabase_realtime ADD TABLE {}; END IF; END $do$"
            ).format(sql.Literal(f"{WHATSAPP_SCHEMA}.{table}"), target)
        )
    out.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, writers))
    out.append(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            sql.SQL(", ").join(_whatsapp_table(t) for t in WHATSAPP_TABLES), writers
        )
    )
    return out


def _create_policy_if_absent(table: str, policy: str, role: str) -> Statement:
    """PostgreSQL has no CREATE POLICY IF NOT EXISTS."""
    return sql.SQL(
        "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = {relation}::regclass"
        " AND polname = {name}) THEN CREATE POLICY {policy} ON {table} FOR ALL TO {role} USING (true)"
        " WITH CHECK (true); END IF; END $do$"
    ).format(
        relation=sql.Literal(f"{WHATSAPP_SCHEMA}.{table}"),
        name=sql.Literal(policy),
        policy=sql.Identifier(policy),
        table=_whatsapp_table(table),
        role=sql.Identifier(role),
    )
