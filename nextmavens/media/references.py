"""Where a project keeps its files' references (issue 17): the offload policy's declared `references`, text columns of
the project's database holding a file's path relative to its storage folder. Once an upload is verified, every row
holding that path gets the file's URL instead, in one transaction as the project's owner role (never a superuser),
committed before the pass deletes the file. Idempotent: run again, it finds the path nowhere and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from nextmavens.manifest.models import OffloadReference

CONNECT_TIMEOUT_S = 10


class ReferencesError(Exception):
    """The references could not be rewritten (nothing was: the transaction rolled back); the message names the
    column, never a value."""


def rewrite_statement(reference: OffloadReference) -> sql.Composed:
    column = sql.Identifier(reference.column)
    return sql.SQL("UPDATE {}.{} SET {} = %s WHERE {} = %s").format(
        sql.Identifier(reference.schema_), sql.Identifier(reference.table), column, column
    )


def replace_references(conninfo: str, references: Sequence[OffloadReference], relative: str, url: str) -> int:
    """Rows changed from `relative` to `url` across `references`, committed (all or none)."""
    where = ""
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user").fetchone()
            if row is None or row[0]:
                raise ReferencesError("the references' session is not the project owner's (a superuser?): refused")
            changed = 0
            with conn.transaction():
                for reference in references:
                    where = f"{reference.schema_}.{reference.table}.{reference.column}"
                    changed += conn.execute(rewrite_statement(reference), (url, relative)).rowcount
            return changed
    except psycopg.Error as exc:
        what = f" ({where})" if where else ""
        why = exc.diag.message_primary or type(exc).__name__
        raise ReferencesError(f"references not rewritten{what}: {why}") from None
