"""Generated data of a realistic shape for backup tests and the benchmark: many tables in several schemas,
large (TOASTed) text rows, binary columns with incompressible bytes, jsonb, numerics, arrays, NULLs."""

from __future__ import annotations

import psycopg
from psycopg import sql

SCHEMAS = ("public", "auth", "storage", "app")


def generate(conn: psycopg.Connection, tables: int = 24, rows: int = 200, blob_kb: int = 4, text_kb: int = 8) -> None:
    """`tables` tables in several schemas; rows of ~blob_kb KB random bytes and ~text_kb KB text."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    for schema in SCHEMAS:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for number in range(tables):
        schema = SCHEMAS[number % len(SCHEMAS)]
        kind = ("users", "orders", "objects", "events")[number % 4]
        table = sql.Identifier(schema, f"t{number:03d}_{kind}")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, uid uuid NOT NULL DEFAULT gen_random_uuid(),"
                " name text, body text, payload bytea, meta jsonb, price numeric(12, 2),"
                " ratio double precision,"
                " tags text[], created_at timestamptz NOT NULL DEFAULT now(), deleted boolean)"
            ).format(table)
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, body, payload, meta, price, ratio, tags, created_at, deleted)"
                " SELECT 'name ' || g,"
                "  CASE WHEN g %% 7 = 0 THEN NULL ELSE"
                "   (SELECT string_agg(md5((g * 1000 + k)::text), ' ')"
                "    FROM generate_series(1, %(text_parts)s) k) END,"
                "  (SELECT string_agg(gen_random_bytes(1024), ''::bytea)"
                "    FROM generate_series(1, %(blob_parts)s) k WHERE g IS NOT NULL),"  # correlated: per row
                "  jsonb_build_object('n', g, 'label', 'item-' || g,"
                "   'nested', jsonb_build_object('ok', g %% 2 = 0)),"
                "  (g * 3.17)::numeric(12, 2), g / 7.0, ARRAY['a' || g, 'b'],"
                "  timestamptz '2026-01-01 00:00:00+00' + g * interval '17 minutes',"
                "  CASE WHEN g %% 5 = 0 THEN NULL"
                "  ELSE g %% 2 = 0 END"
                " FROM generate_series(1, %(rows)s) g"
            ).format(table),
            {"rows": rows, "blob_parts": max(1, blob_kb), "text_parts": max(1, text_kb * 1024 // 33)},
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (created_at)").format(table))
        if kind == "events":  # a json (not jsonb) column: a type without a hash function
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN raw json").format(table))
            conn.execute(sql.SQL("""UPDATE {} SET raw = json_build_object('id', id, 'x', 'y')""").format(table))
    conn.execute("CREATE VIEW app.recent AS SELECT id, name FROM public.t000_users WHERE id > 10")
