"""What the service's PostgreSQL login may do, found out at open: a superuser (tests, a developer's machine) creates
and migrates the control database as the engine does; any other role (on the host, nextmavens_platform) may not,
so a control database still missing migrations stops the service with what to run instead."""

from __future__ import annotations

import psycopg
from psycopg import errors

from nextmavens.control.db import connect_control, dsn_for_database, pending_migrations
from nextmavens.naming import CONTROL_DATABASE

APPLICATION_NAME = "nextmavens-platform"


class ControlNotReady(RuntimeError):
    """The control database is not migrated (or its grants are missing) and the service's role may not fix it."""


def session_is_superuser(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user").fetchone()
    return bool(row and row[0])


def prepare_control(dsn: str) -> bool:
    """Make sure the control database is ready for the service; whether its login is a superuser."""
    with psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME) as conn:
        superuser = session_is_superuser(conn)
        user = conn.info.user
    if superuser:
        connect_control(dsn).close()
        return True
    advice = "run `nextmavens apply` as the admin role (the deploy does) before starting the service"
    try:
        with psycopg.connect(
            dsn_for_database(dsn, CONTROL_DATABASE), autocommit=True, application_name=APPLICATION_NAME
        ) as conn:
            pending = pending_migrations(conn)
    except (psycopg.OperationalError, errors.InsufficientPrivilege) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise ControlNotReady(
            f"role {user} cannot read the control database {CONTROL_DATABASE!r} ({reason}): its grants come with"
            f" the control migrations; {advice}"
        ) from None
    if pending:
        raise ControlNotReady(
            f"the control database lacks migrations {', '.join(pending)} of this package, and role {user} (no"
            f" superuser) may not apply them: {advice}"
        )
    return False
