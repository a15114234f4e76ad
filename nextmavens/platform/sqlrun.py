"""One SQL statement of a caller's, run in a project's database as one of its own roles, with its results as data.

The guards, each of which holds on its own:
- one statement only: the text is sent with the extended query protocol (Parse/Bind/Execute), which PostgreSQL
  refuses to give more than one command, so `COMMIT; DROP TABLE t` never runs its second half (a simple-protocol
  `execute` would run both: the reference's verified table);
- read-only mode runs as the project's read-only role (SELECT on its own schemas, member of no role, so `SET
  ROLE`/`set_config('role', ...)` have nowhere to go) inside `BEGIN READ ONLY`, and is always rolled back;
  write mode runs as the project's owner role, never a superuser's session;
- a statement timeout (and lock timeout) set for the transaction, and a watchdog that cancels the statement
  should the statement raise its own timeout;
- at most `max_rows` rows and `max_bytes` of them are kept (`truncated` says so); in read-only mode the rest is
  cancelled, in write mode read and dropped so the write itself completes;
- a statement that ends the transaction (COMMIT, ROLLBACK) is reported as refused.

Sessions come from small pools per project and role; each is reset with DISCARD ALL when it goes back, so
nothing a statement set (SET, PREPARE, LISTEN, advisory locks, temporary tables) reaches the next call.
"""

from __future__ import annotations

import datetime
import decimal
import json
import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from nextmavens.control.db import owner_dsn
from nextmavens.platform.migrationrun import watchdog

MIB = 1024 * 1024
TRANSACTION_ENDED = (
    "the statement ended the transaction (COMMIT, ROLLBACK or similar): each call runs in a transaction of its own, "
    "send the statement alone"
)
MULTIPLE = (
    "one statement per call: the text holds more than one (separated by ';'); send each statement in a call of its own"
)

COPY = "COPY to or from the client is not supported here: use SELECT to read, INSERT ... SELECT or VALUES to write"
EMPTY = "the query holds no SQL statement"


@dataclass(frozen=True)
class SqlLimits:
    timeout_ms: int = 10_000
    max_rows: int = 1000
    max_bytes: int = MIB


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool  # more rows (or bytes) than the limits: those beyond were not returned

    def as_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows, "row_count": len(self.rows), "truncated": self.truncated}


class SqlRefused(Exception):
    """The statement failed or was refused: `code` (a SQLSTATE, `timeout`, `multiple_statements`, ...) and
    PostgreSQL's message about the caller's own SQL (never a host, a password or another project's name)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SessionUnavailable(Exception):
    """The role could not log in (a suspended project's cannot) or no pooled session came in time."""


class StaleSession(Exception):
    """A pooled session was found closed (the server restarted, an idle timeout) before the caller's SQL was sent."""


def jsonable(value: Any) -> Any:
    """A value of a row as JSON: numbers, text, booleans and JSON as they are; the rest as PostgreSQL's text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return str(value)


def _stream_size() -> int:
    """Rows per round trip: chunked when libpq can (17+), one at a time otherwise."""
    return 100 if psycopg.capabilities.has_stream_chunked() else 1


def run_statement(conn: psycopg.Connection, query: str, read_only: bool, limits: SqlLimits) -> SqlResult:
    """Run `query` on `conn` (autocommit, idle) in a transaction of its own; SqlRefused for its failure,
    SessionUnavailable when the session broke."""
    # One round trip, our own text (the simple protocol takes several statements; the numbers are ints)
    timeout = int(limits.timeout_ms)
    begin = "BEGIN READ ONLY" if read_only else "BEGIN"
    try:
        conn.execute(f"{begin}; SET LOCAL statement_timeout = {timeout}; SET LOCAL lock_timeout = {timeout}".encode())
    except psycopg.OperationalError:
        if conn.broken or conn.closed:
            raise StaleSession() from None  # nothing of the caller's was sent: another session may run it
        raise
    columns: list[str] = []
    rows: list[list[Any]] = []
    truncated = False
    size = 0
    try:
        with watchdog(conn, limits.timeout_ms / 1000 + 2), conn.cursor() as cur:
            stream = cast(Generator[Any, None, None], cur.stream(query, size=_stream_size()))
            try:
                for row in stream:
                    if truncated:
                        continue  # write mode: the rest is read and dropped, so the write completes
                    if not columns and cur.description:
                        columns = [col.name for col in cur.description]
                    values = [jsonable(value) for value in row]
                    size += len(json.dumps(values, default=str))
                    if len(rows) >= limits.max_rows or size > limits.max_bytes:
                        truncated = True
                        if read_only:
                            break  # closing the stream cancels the rest; the transaction is rolled back anyway
                        continue
                    rows.append(values)
            finally:
                stream.close()
            if not columns and cur.description:
                columns = [col.name for col in cur.description]
    except psycopg.Error as exc:
        if conn.broken or conn.closed:
            raise SessionUnavailable("the session broke during the statement") from None
        _refuse_copy(conn)
        if exc.sqlstate is None and not query.strip(" \t\r\n;"):
            _rollback(conn)
            raise SqlRefused("empty", EMPTY) from None
        # a command that returns no rows (CREATE, INSERT without RETURNING, COMMIT) ends the stream with this
        # client-side error (no SQLSTATE); whether it ended the transaction is checked below
        command_done = exc.sqlstate is None and conn.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.IDLE,
        )
        if not command_done:
            _rollback(conn)
            if isinstance(exc, errors.QueryCanceled):
                raise SqlRefused(
                    "timeout", f"the statement ran longer than {limits.timeout_ms} ms and was cancelled"
                ) from None
            raise _refusal(exc) from None
    _refuse_copy(conn)
    if read_only:
        # Rolled back when the session goes back to its pool (_reset: ROLLBACK, then DISCARD ALL), after the answer
        # has left: a READ ONLY transaction has nothing to keep, so the caller need not wait for it.
        if conn.info.transaction_status == TransactionStatus.IDLE:
            raise SqlRefused("transaction_ended", TRANSACTION_ENDED)
        return SqlResult(columns, rows, truncated)
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        _rollback(conn)
        raise SqlRefused("transaction_ended", TRANSACTION_ENDED)
    conn.execute("COMMIT")
    return SqlResult(columns, rows, truncated)


def _refuse_copy(conn: psycopg.Connection) -> None:
    """A COPY to or from the client leaves the session mid-command: it is closed (its transaction, and any write
    in it, abandoned) and the pool opens another."""
    if conn.info.transaction_status == TransactionStatus.ACTIVE:
        conn.close()
        raise SqlRefused("copy_refused", COPY)


def _rollback(conn: psycopg.Connection) -> None:
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        conn.execute("ROLLBACK")


def _refusal(exc: psycopg.Error) -> SqlRefused:
    sqlstate = exc.diag.sqlstate or ""
    message = exc.diag.message_primary or type(exc).__name__
    if "multiple commands" in message:
        return SqlRefused("multiple_statements", MULTIPLE)
    hint = exc.diag.message_hint
    detail = f"{message} (hint: {hint})" if hint else message
    return SqlRefused(sqlstate or "failed", detail)


def _reset(conn: psycopg.Connection) -> None:
    """A session going back to its pool forgets whatever the statement set (DISCARD ALL: settings, prepared
    statements, LISTEN, advisory locks, temporary tables). psycopg prepares nothing on these sessions
    (prepare_threshold None), so no statement of its own cache is lost with them."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    conn.execute("DISCARD ALL")


def _configure(conn: psycopg.Connection) -> None:
    """A new session's first check: never a superuser's (the tenant's SQL never runs with a superuser's rights)."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").fetchone()
    if row is None or row[0]:
        raise psycopg.OperationalError("the project's session is a superuser's: refused")


class RoleLogins:
    """Passwords of projects' roles read from the sealed secrets, kept in memory `ttl_s` seconds (a lookup opens
    connections to the control database; a call should cost one round trip in the steady state). Keyed by the
    project the caller was already allowed (org, ref), never by what a request sent; `forget` drops a project's
    at once (a key rotation)."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    def passwords(self, org: str, ref: str, load: Callable[[], dict[str, str]]) -> dict[str, str]:
        now = self._clock()
        with self._lock:
            hit = self._found.get((org, ref))
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        found = load()
        with self._lock:
            self._found[(org, ref)] = (now, found)
        return found

    def forget(self, org: str, ref: str) -> None:
        with self._lock:
            self._found.pop((org, ref), None)


class ProjectSessions:
    """Small pools of sessions per (project, role), opened at first use and closed with the service, or after
    `idle_s` unused. A new password (the project's secrets changed) replaces the role's pool."""

    def __init__(self, dsn: str, pool_size: int = 2, timeout_s: float = 5.0, idle_s: float = 300.0) -> None:
        self._dsn = dsn
        self._size = pool_size
        self._timeout = timeout_s
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], tuple[str, ConnectionPool[Any], float]] = {}

    def pool(self, ref: str, role: str, password: str) -> ConnectionPool[Any]:
        with self._lock:
            now = time.monotonic()
            stale = [k for k, (_, _, used) in self._pools.items() if now - used > self._idle_s and k != (ref, role)]
            for key in stale:
                self._pools.pop(key)[1].close(timeout=0)
            current = self._pools.get((ref, role))
            if current is not None and current[0] == password:
                self._pools[(ref, role)] = (password, current[1], now)
                return current[1]
            if current is not None:
                current[1].close(timeout=0)
            dsn = owner_dsn(self._dsn, ref, password, 30_000, application_name="nextmavens-sql", role=role)
            pool: ConnectionPool[Any] = ConnectionPool(
                dsn,
                min_size=0,
                max_size=self._size,
                timeout=self._timeout,
                kwargs={"autocommit": True, "connect_timeout": 10, "prepare_threshold": None},  # see _reset
                configure=_configure,
                reset=_reset,
                open=True,
                name=f"sql-{ref}-{role}",
            )
            self._pools[(ref, role)] = (password, pool, now)
            return pool

    def run(self, ref: str, role: str, password: str, query: str, read_only: bool, limits: SqlLimits) -> SqlResult:
        pool = self.pool(ref, role, password)
        # Sessions are not checked with a round trip when taken from the pool: one found closed before the caller's
        # SQL was sent is dropped (the pool discards a closed session) and the statement goes to the next one; after
        # a server restart every pooled session is closed, so as many tries as the pool holds, then a new session.
        for _ in range(self._size + 1):
            try:
                with pool.connection() as conn:
                    return run_statement(conn, query, read_only, limits)
            except StaleSession:
                continue
            except (PoolTimeout, psycopg.OperationalError):
                break
        raise SessionUnavailable(f"role {role} cannot open a session in its database")

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for _, pool, _ in pools:
            pool.close()


__all__ = ["SessionUnavailable", "SqlLimits", "SqlRefused", "SqlResult", "ProjectSessions", "run_statement"]
