"""Building blocks of the schemas the platform keeps in a project's database for the project's own data (whatsapp,
email): made by LAYER_ROLE, never taken over from another owner, RLS on with a policy per writer, every table in
the supabase_realtime publication. Builds statements only; it runs nothing. Every statement may run again."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from nextmavens.engine.desired import LAYER_ROLE

Statement = sql.Composed | sql.SQL  # as sqlgen's


def create_schema(schema: str) -> list[Statement]:
    """The schema, owned by LAYER_ROLE. One created by someone else (the project's owner may create schemas in its
    database) is never taken over: the transaction fails and names it."""
    return [
        sql.SQL(
            "DO $do$ DECLARE found text; BEGIN"
            " SELECT pg_get_userbyid(nspowner) INTO found FROM pg_namespace WHERE nspname = {name};"
            " IF found IS NOT NULL AND found <> {layer} THEN RAISE EXCEPTION"
            " 'schema % in database % is owned by %, not by %: the platform creates it itself and never takes"
            " over one it did not create; rename or drop that schema (after saving its data) and apply again',"
            " {name}, current_database(), found, {layer}; END IF; END $do$"
        ).format(name=sql.Literal(schema), layer=sql.Literal(LAYER_ROLE)),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(schema), sql.Identifier(LAYER_ROLE)
        ),
    ]


def secure_table(schema: str, table: str, writers: Iterable[str]) -> list[Statement]:
    """RLS on, a policy per writer role, and the table in the supabase_realtime publication."""
    target = sql.Identifier(schema, table)
    out: list[Statement] = [sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target)]
    for role in writers:
        out.append(policy_if_absent(schema, table, f"{role} writes", role))
    out.append(
        sql.SQL(
            "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication_rel r"
            " JOIN pg_publication p ON p.oid = r.prpubid"
            " WHERE p.pubname = 'supabase_realtime' AND r.prrelid = {}::regclass)"
            " THEN ALTER PUBLICATION supabase_realtime ADD TABLE {}; END IF; END $do$"
        ).format(sql.Literal(f"{schema}.{table}"), target)
    )
    return out


def grant_writers(schema: str, tables: Iterable[str], writers: Iterable[str]) -> list[Statement]:
    roles = sql.SQL(", ").join(sql.Identifier(r) for r in writers)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), roles),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables), roles
        ),
    ]


def policy_if_absent(schema: str, table: str, policy: str, role: str) -> Statement:
    """PostgreSQL has no CREATE POLICY IF NOT EXISTS."""
    return sql.SQL(
        "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = {relation}::regclass"
        " AND polname = {name}) THEN CREATE POLICY {policy} ON {table} FOR ALL TO {role} USING (true)"
        " WITH CHECK (true); END IF; END $do$"
    ).format(
        relation=sql.Literal(f"{schema}.{table}"),
        name=sql.Literal(policy),
        policy=sql.Identifier(policy),
        table=sql.Identifier(schema, table),
        role=sql.Identifier(role),
    )
