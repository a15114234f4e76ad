"""TypeScript types of a project's own schemas, made by the host's real postgres-meta connected as the project's
read-only login role (never its default connection, which is a superuser's, never another project's database).

What this relies on is read in supabase/postgres-meta at the pinned tag (`git show v0.91.6:<path>`): FACTS below.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlencode

from nextmavens.edge.clients.http import AdminApiError, check_internal, scrub
from nextmavens.platform.studiogate import CONNECTION_HEADER, cryptojs_encrypt

POSTGRES_META_TAG = "v0.91.6"
# (what, where in the source at POSTGRES_META_TAG, the fact); the stand-in (devkit/standins/postgresmeta.py) follows it
FACTS = (
    (
        "connection per request",
        "src/server/routes/index.ts (onRequest hook)",
        "`x-connection-encrypted`: the connection URL encrypted with CRYPTO_KEY by CryptoJS's passphrase AES "
        "(studiogate.cryptojs_encrypt); a `pg` header sent by the client is overwritten; without the header its "
        "own PG_META_DB_* connection (supabase_admin, a superuser) is used: every request here carries the header",
    ),
    (
        "a bad header",
        "src/server/routes/index.ts, src/server/app.ts (error handler)",
        "not decryptable, empty, or not a URL: 500 {error: 'failed to process upstream connection details'} "
        "(or 'failed to get ...'), before any route runs",
    ),
    (
        "the generator",
        "src/server/routes/generators/typescript.ts",
        "GET /generators/typescript; included_schemas and excluded_schemas split on ',' and trimmed; "
        "detect_one_to_one_relationships=true; postgrest_version; 200 with the TypeScript as text; 500 "
        "{error: <message>} when its catalog read fails (a refused login too)",
    ),
    ("application name", "src/server/utils.ts", "x-pg-application-name replaces the pool's application_name"),
    ("its pool", "src/server/constants.ts", "one connection per request, 15 s to connect, 55 s per query"),
    ("unknown path", "src/server/app.ts", "404 {error: 'Not found'}"),
)

GENERATOR_PATH = "/generators/typescript"
APPLICATION_NAME_HEADER = "x-pg-application-name"
APPLICATION_NAME = "nextmavens-types"
MAX_TYPES_BYTES = 16 * 1024 * 1024
# A schema name postgres-meta's comma-split list carries as it is (the manifest's SCHEMA_NAME_PATTERN, and public)
LISTABLE_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")

# The project's own schemas: those its read-only role may use (public and the manifest's), read as that role
OWN_SCHEMAS = (
    "SELECT n.nspname FROM pg_namespace n WHERE has_schema_privilege(n.oid, 'USAGE') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1"
)


class TypesFailed(Exception):
    """postgres-meta could not be reached or refused: `message` says what (no password, no connection string)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def listable(schemas: Sequence[str]) -> list[str]:
    """The schemas whose names go into postgres-meta's `included_schemas` unchanged (no comma, no space)."""
    return [name for name in schemas if LISTABLE_SCHEMA.match(name)]


def generator_url(meta_url: str, schemas: Sequence[str]) -> str:
    if not schemas:
        raise TypesFailed("the project has no schema its read-only role may read")
    query = urlencode({"included_schemas": ",".join(schemas), "detect_one_to_one_relationships": "true"})
    return f"{meta_url.rstrip('/')}{GENERATOR_PATH}?{query}"


def typescript_types(
    meta_url: str,
    crypto_key: str,
    connection: str,
    schemas: Sequence[str],
    secrets: Sequence[str] = (),
    timeout_s: float = 70.0,
) -> str:
    """The TypeScript postgres-meta generates for `schemas`, connected with `connection` (a project role's);
    `secrets` (the role's password) never appear in an error."""
    hidden = [connection, crypto_key, *secrets]
    try:
        base = check_internal(meta_url)
    except AdminApiError as exc:
        raise TypesFailed(str(exc)) from None
    request = urllib.request.Request(generator_url(base, schemas), method="GET")  # noqa: S310 - checked above
    request.add_header(CONNECTION_HEADER, cryptojs_encrypt(connection, crypto_key))
    request.add_header(APPLICATION_NAME_HEADER, APPLICATION_NAME)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read(MAX_TYPES_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = _error_of(exc.read(4096))
        raise TypesFailed(f"postgres-meta answered {exc.code}: {scrub(detail, hidden)}") from None
    except (OSError, ValueError) as exc:
        raise TypesFailed(f"postgres-meta could not be reached: {scrub(str(exc), hidden)}") from None
    if len(body) > MAX_TYPES_BYTES:
        raise TypesFailed(f"the types are larger than {MAX_TYPES_BYTES // (1024 * 1024)} MiB")
    return body.decode("utf-8", errors="replace")


def _error_of(raw: bytes) -> str:
    try:
        found = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")[:300]
    if isinstance(found, dict) and isinstance(found.get("error"), str):
        return found["error"][:300]
    return str(found)[:300]
