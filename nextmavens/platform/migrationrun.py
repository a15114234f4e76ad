"""Reading and writing a project's migration history, and applying migrations, as the project's owner role.

The tenant's SQL never runs in a superuser's session, not even behind SET ROLE (RESET ROLE would undo it): the
session logs in as the project's owner role with its own password, so whatever the SQL does, it does with the
owner's rights. The owner owns its database, so it creates `supabase_migrations` itself, as the Supabase CLI
does, and owns that history: it can only ever rewrite its own project's record of itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from nextmavens.control.db import owner_dsn
from nextmavens.platform.migrationplan import Applied, Migration, MigrationPlan, split_statements

HISTORY_TABLE = "supabase_migrations.schema_migrations"
# The history table as the Supabase CLI creates and extends it (pkg/migration/history.go): the columns, their
# types and the idempotent statements, so a database set up by either side works with the other.
CREATE_HISTORY = (
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
)
INSERT_HISTORY = "INSERT INTO supabase_migrations.schema_migrations (version, name, statements) VALUES (%s, %s, %s)"


class OwnerLoginFailed(Exception):
    """The owner role could not log in (a suspended project's cannot); the cause is not repeated: it names hosts."""


class NotOwnerSession(Exception):
    """The session is a superuser's: the tenant's SQL is never run in one."""


@dataclass(frozen=True)
class Failed:
    version: str
    statement: int  # 1-based index of the statement that failed; 0: before any (e.g. the history insert)
    sqlstate: str | None
    message: str  # PostgreSQL's primary message: about the tenant's own SQL


@dataclass(frozen=True)
class Outcome:
    applied: list[Applied]
    failed: Failed | None


@contextmanager
def owner_session(dsn: str, ref: str, password: str, statement_timeout_ms: int) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(owner_dsn(dsn, ref, password, statement_timeout_ms), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError:
        raise OwnerLoginFailed(f"the owner role of {ref} cannot log in to its database") from None
    with conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").fetchone()
        if row is None or row[0]:
            raise NotOwnerSession(f"the session for {ref}'s migrations is not its owner's")
        yield conn


@contextmanager
def watchdog(conn: psycopg.Connection, seconds: float) -> Iterator[None]:
    """Cancel whatever `conn` runs once `seconds` have passed (SQL can raise its own statement_timeout)."""
    timer = threading.Timer(seconds, conn.cancel_safe)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def read_history(conn: psycopg.Connection) -> list[Applied]:
    """The recorded versions in order; none when the history table does not exist (nothing created here)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "SELECT version, coalesce(name, '') FROM supabase_migrations.schema_migrations ORDER BY version"
    ).fetchall()
    return [Applied(str(version), str(name)) for version, name in rows]


def ensure_history(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for statement in CREATE_HISTORY:
            conn.execute(statement.encode())


def apply_plan(conn: psycopg.Connection, plan: MigrationPlan) -> Outcome:
    """Each pending migration and its history row in one transaction, in order; the first failure rolls back
    (with its row) and stops the run. The migrations before it stay applied."""
    applied: list[Applied] = []
    for migration in plan.pending:
        failed = apply_one(conn, migration)
        if failed is not None:
            return Outcome(applied, failed)
        applied.append(Applied(migration.version, migration.name))
    return Outcome(applied, None)


class _EndedTransaction(Exception):
    pass


def apply_one(conn: psycopg.Connection, migration: Migration) -> Failed | None:
    statements = split_statements(migration.sql)
    number = 0  # the statement running, for the failure's report
    try:
        with conn.transaction():
            for statement in statements:
                number += 1
                conn.execute(statement.encode())
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
                    raise _EndedTransaction
            number = 0
            conn.execute(sql.SQL(INSERT_HISTORY), (migration.version, migration.name, statements))
    except _EndedTransaction:
        message = "the migration ends the transaction (COMMIT, ROLLBACK or BEGIN): each runs in one transaction"
        return Failed(migration.version, number, None, message)
    except psycopg.Error as exc:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        message = exc.diag.message_primary or type(exc).__name__
        return Failed(migration.version, number, exc.diag.sqlstate, message)
    return None
