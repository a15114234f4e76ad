"""A STAND-IN for postgres-meta's TypeScript generator (the real 0.91.6 runs in the sandbox only), refusing what it
refuses (nextmavens.platform.typegen.FACTS): the connection comes from `x-connection-encrypted` only (decrypted
with its CRYPTO_KEY; a `pg` header is overwritten; without the header it uses its own default connection, which is
recorded so a test can prove it never happens), a bad header is a 500 before any route, and the types are read from
the real PostgreSQL with the given connection (so PostgreSQL's own refusals come back as 500 {error}).

The TypeScript is a small subset of the real template's: each schema's Tables and Views with their Row types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg

from devkit.standins.loopback import LoopbackStandin
from nextmavens.platform.studiogate import cryptojs_decrypt

TS_TYPES = {
    "int2": "number", "int4": "number", "int8": "number", "float4": "number", "float8": "number",
    "numeric": "number", "bool": "boolean", "json": "Json", "jsonb": "Json",
}  # fmt: skip

COLUMNS = """
SELECT n.nspname, c.relname, c.relkind, a.attname, t.typname, NOT a.attnotnull
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm')
  AND has_schema_privilege(n.oid, 'USAGE')
ORDER BY n.nspname, c.relname, a.attnum
"""


@dataclass
class MetaRecord:
    seen: list[dict[str, str]] = field(default_factory=list)  # each request: path, user, database (no password)
    default_used: int = 0  # requests served with the stand-in's own (superuser) connection


def generate(connection: str, application_name: str, schemas: list[str]) -> str:
    tables: dict[str, dict[str, dict[str, list[str]]]] = {s: {"Tables": {}, "Views": {}} for s in schemas}
    with psycopg.connect(connection, application_name=application_name, connect_timeout=15) as conn:
        for schema, table, kind, column, typname, nullable in conn.execute(COLUMNS, [schemas]).fetchall():
            ts = TS_TYPES.get(typname, "string") + (" | null" if nullable else "")
            section = "Tables" if kind in ("r", "p") else "Views"
            tables[schema][section].setdefault(table, []).append(f"          {column}: {ts}")
    out = ["export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]", ""]
    out.append("export type Database = {")
    for schema, sections in tables.items():
        out.append(f"  {schema}: {{")
        for section, found in sections.items():
            out.append(f"    {section}: {{")
            for table, columns in found.items():
                out += [f"      {table}: {{", "        Row: {", *columns, "        }", "      }"]
            out.append("    }")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


class PostgresMetaStandIn(LoopbackStandin):
    def __init__(self, crypto_key: str, default_connection: str) -> None:
        self.record = MetaRecord()
        record, key, default = self.record, crypto_key, default_connection

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, body: str, kind: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                encrypted = self.headers.get("x-connection-encrypted")
                if encrypted:
                    connection = cryptojs_decrypt(encrypted, key)
                    if connection is None:
                        return self.answer(500, json.dumps({"error": "failed to process upstream connection details"}))
                    connection = connection.strip()
                    if not connection:
                        return self.answer(500, json.dumps({"error": "failed to get upstream connection details"}))
                    if urlsplit(connection).scheme not in ("postgres", "postgresql"):
                        return self.answer(500, json.dumps({"error": "failed to process upstream connection details"}))
                else:
                    connection = default
                    record.default_used += 1
                parts = urlsplit(self.path)
                target = urlsplit(connection)
                record.seen.append({"path": parts.path, "user": target.username or "", "database": target.path})
                if parts.path.rstrip("/") != "/generators/typescript":
                    return self.answer(404, json.dumps({"error": "Not found"}))
                query = parse_qs(parts.query)
                schemas = [s.strip() for s in ",".join(query.get("included_schemas", [])).split(",") if s.strip()]
                name = self.headers.get("x-pg-application-name") or "postgres-meta 0.91.6"
                try:
                    types = generate(connection, name, schemas or ["public"])
                except psycopg.Error as exc:
                    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    return self.answer(500, json.dumps({"error": message}))
                return self.answer(200, types, "text/plain; charset=utf-8")

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
