"""Which superuser roles the platform expects: the one list, used by restores and by `status`/health.

A superuser the platform does not manage is a sign of compromise (a tenant that escalated, a forgotten
manual role): `status` and `monitor health` report it, and a restore never replays objects it owns.
"""

from __future__ import annotations

import psycopg

from nextmavens.engine.desired import LAYER_ROLE

# The bootstrap superusers of the images the platform runs on: `postgres` (Debian, the official image)
# and `supabase_admin` (supabase/postgres). The role with OID 10 (whoever ran initdb) and the role the
# DSN connects as are expected too, whatever their names.
BOOTSTRAP_SUPERUSERS = ("postgres", "supabase_admin")
# Superuser roles the engine itself creates (engine.desired.cluster_roles).
ENGINE_SUPERUSERS = (LAYER_ROLE,)

_SUPERUSERS_SQL = (
    "SELECT rolname, oid = 10, rolname = session_user FROM pg_roles WHERE rolsuper ORDER BY rolname"
)


def expected(name: str, bootstrap: bool = False, connecting: bool = False) -> bool:
    return bootstrap or connecting or name in BOOTSTRAP_SUPERUSERS or name in ENGINE_SUPERUSERS


def superusers(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(expected, unexpected) superuser role names in the cluster `conn` is connected to."""
    good: list[str] = []
    bad: list[str] = []
    for name, bootstrap, connecting in conn.execute(_SUPERUSERS_SQL).fetchall():
        (good if expected(str(name), bool(bootstrap), bool(connecting)) else bad).append(str(name))
    return good, bad
