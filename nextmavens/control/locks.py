"""The advisory locks that serialize changes.

The apply lock: every writer of project databases (apply, keys rotate, destroy, the edge step, restore's
swap) holds it through `apply_lock`, on its control connection. The work lock: every connection that changes
the cluster under the apply lock joins it (`join_work`). The backup lock: one backup run at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors

from nextmavens.control.db import connect_cluster
from nextmavens.control.store import runs

# One advisory lock key for every change the engine makes (apply, rotate, destroy).
APPLY_LOCK_KEY = 7_242_016_301
# Held in shared mode by every working connection of the lock holder, for that connection's whole life.
# The apply lock lives on the control connection, whose backend ends at once when the process is killed;
# a working backend still running CREATE DATABASE ends only when that statement does. The next holder
# takes this key exclusively (and lets it go) before it observes anything, so it waits for those.
WORK_LOCK_KEY = 7_242_016_302
BACKUP_LOCK_KEY = 727_001  # one backup run at a time


class LockTimeout(Exception):
    pass


def join_work(conn: psycopg.Connection) -> psycopg.Connection:
    """Mark a connection opened under the apply lock as working for the holder (see WORK_LOCK_KEY).

    Call it right after connecting, before the connection changes anything; the mark ends with the backend.
    """
    conn.execute("SELECT pg_advisory_lock_shared(%s)", (WORK_LOCK_KEY,))
    return conn


def _set_lock_timeout(conn: psycopg.Connection, timeout_s: float) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(timeout_s * 1000)}ms",))


@contextmanager
def apply_lock(dsn: str, control: psycopg.Connection, timeout_s: float) -> Iterator[None]:
    """The apply lock on `control`, waiting at most `timeout_s`. Once held, the statements of an earlier
    holder that was killed have ended too, and its unfinished audit runs are marked interrupted.
    Connections that change the cluster under this lock must be marked with `join_work`."""
    _set_lock_timeout(control, timeout_s)
    try:
        control.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
    except errors.LockNotAvailable:
        holder = control.execute(
            "SELECT a.pid, a.backend_start, coalesce(a.client_addr::text, 'local') FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (APPLY_LOCK_KEY,),
        ).fetchone()
        who = f" (server pid {holder[0]} from {holder[2]}, connected {holder[1]:%Y-%m-%d %H:%M:%S})" if holder else ""
        raise LockTimeout(f"another apply is running{who}; waited {timeout_s:g}s. Try again when it ends.") from None
    finally:
        control.execute("SELECT set_config('lock_timeout', '0', false)")
    try:
        _wait_for_earlier_work(dsn, control, timeout_s)
        # Holding the lock proves no other run is going on: a run still marked running was killed.
        runs.mark_interrupted(control)
        yield
    finally:
        if not control.closed:
            control.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))


def _wait_for_earlier_work(dsn: str, control: psycopg.Connection, timeout_s: float) -> None:
    """Wait (within the lock timeout) until no working connection of an earlier holder remains.

    Advisory locks belong to one database, and working connections are in several (the cluster's,
    each project's): find the databases where one is still held, and wait for it there.
    """
    databases = control.execute(
        "SELECT DISTINCT d.datname FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.pid <> pg_backend_pid()"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
        (WORK_LOCK_KEY,),
    ).fetchall()
    for (database,) in databases:
        with connect_cluster(dsn, database, trusted_path=True) as conn:
            _set_lock_timeout(conn, timeout_s)
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (WORK_LOCK_KEY,))
            except errors.LockNotAvailable:
                raise LockTimeout(
                    f"statements of an earlier, ended apply are still running in database {database!r} after "
                    f"{timeout_s:g}s (see pg_stat_activity, application_name nextmavens). "
                    "Try again when they end."
                ) from None


def try_backup_lock(control: psycopg.Connection) -> bool:
    """Take the backup lock on the control connection if free; whether it was taken."""
    row = control.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def release_backup_lock(control: psycopg.Connection) -> None:
    control.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
