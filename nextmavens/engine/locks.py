"""The advisory locks that serialize every change the engine makes (apply, rotate, destroy, restore)."""

from __future__ import annotations

import psycopg

# One advisory lock key for every change the engine makes (apply, rotate, destroy).
APPLY_LOCK_KEY = 7_242_016_301
# Held in shared mode by every working connection of the lock holder, for that connection's whole life.
# The apply lock lives on the control connection, whose backend ends at once when the process is killed;
# a working backend still running CREATE DATABASE ends only when that statement does. The next holder
# takes this key exclusively (and lets it go) before it observes anything, so it waits for those.
WORK_LOCK_KEY = 7_242_016_302


def join_work(conn: psycopg.Connection) -> psycopg.Connection:
    """Mark a connection opened under the apply lock as working for the holder (see WORK_LOCK_KEY).

    Call it right after connecting, before the connection changes anything; the mark ends with the backend.
    """
    conn.execute("SELECT pg_advisory_lock_shared(%s)", (WORK_LOCK_KEY,))
    return conn

