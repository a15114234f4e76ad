"""Where a project keeps its files' references (issue 17): the offload policy's declared `references`, text columns of
the project's database holding a file's path relative to its storage folder. Once an upload is verified, every row
holding that path gets the file's URL instead, in one transaction as the project's owner role (never a superuser),
committed before the pass deletes the file. Idempotent: run again, it finds the path nowhere and changes nothing.

The project's tables may carry the tenant's triggers, which can change the session's timeouts
(`set_config('statement_timeout', '0', false)`) and then sleep: each UPDATE is preceded by its own
`statement_timeout` and `lock_timeout` (transaction-local, sent again before every UPDATE), and a watchdog thread
cancels the session's running query once the whole rewrite has taken `watchdog_s`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import psycopg
from psycopg import sql

from nextmavens.manifest.models import OffloadReference

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 10_000  # one UPDATE (a column the project did not index: a sequential scan)
LOCK_TIMEOUT_MS = 5_000  # a row the project's own app holds
WATCHDOG_S = 60.0  # the whole rewrite, whatever the session's settings say by then


class ReferencesError(Exception):
    """The references could not be rewritten (nothing was: the transaction rolled back); the message names the
    column, never a value."""


def rewrite_statement(reference: OffloadReference) -> sql.Composed:
    column = sql.Identifier(reference.column)
    return sql.SQL("UPDATE {}.{} SET {} = %s WHERE {} = %s").format(
        sql.Identifier(reference.schema_), sql.Identifier(reference.table), column, column
    )


def replace_references(
    conninfo: str,
    references: Sequence[OffloadReference],
    relative: str,
    url: str,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    watchdog_s: float = WATCHDOG_S,
) -> int:
    """Rows changed from `relative` to `url` across `references`, committed (all or none)."""
    where = ""
    fired = threading.Event()
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:

            def cancel() -> None:
                fired.set()
                try:
                    conn.cancel_safe(timeout=CONNECT_TIMEOUT_S)
                except psycopg.Error:  # already done and closed, or the server unreachable: nothing to stop
                    pass

            watchdog = threading.Timer(watchdog_s, cancel)
            watchdog.daemon = True
            watchdog.start()
            try:
                row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user").fetchone()
                if row is None or row[0]:
                    raise ReferencesError("the references' session is not the project owner's (a superuser?): refused")
                changed = 0
                with conn.transaction():
                    for reference in references:
                        where = f"{reference.schema_}.{reference.table}.{reference.column}"
                        # again before each UPDATE: a trigger of the previous one may have changed them
                        conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{statement_timeout_ms}ms",))
                        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{LOCK_TIMEOUT_MS}ms",))
                        changed += conn.execute(rewrite_statement(reference), (url, relative)).rowcount
                return changed
            finally:
                watchdog.cancel()
    except psycopg.Error as exc:
        what = f" ({where})" if where else ""
        why = exc.diag.message_primary or type(exc).__name__
        if fired.is_set():
            why = f"took longer than {watchdog_s:.1f} s"
        raise ReferencesError(f"references not rewritten{what}: {why}") from None
