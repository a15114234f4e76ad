"""Destroying a project: the only path that drops data, and only after a fresh, checked dump.

Order, so that every write a client saw committed is in the dump: first block the project (its login roles
lose LOGIN, its database takes no new connections but a superuser's, every session in it or of its roles
is ended and waited for), then dump, then close the database to everyone and drop it and the roles.

A failure before the drop leaves the project blocked, never silently reopened: the error says so, and how
to undo it (declare the project again and apply, which restores its logins and connection limit).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from nextmavens.control.db import dsn_for_database, dsn_without_password, end_session
from nextmavens.files import create_private_file
from nextmavens.naming import ProjectNames, project_names
from nextmavens.pgtools import pg_tool

# How long ended sessions get to go away (each end_session waits up to TERMINATE_WAIT_MS).
SESSIONS_GONE_TIMEOUT_S = 30.0
TERMINATE_WAIT_MS = 2000


class DestroyError(Exception):
    pass


@dataclass(frozen=True)
class DestroyResult:
    dump_path: Path | None
    dropped_database: bool
    dropped_roles: tuple[str, ...]


def blocked_note(ref: str) -> str:
    return (
        f"Nothing was dropped, but {ref} is blocked: its roles cannot log in and its database takes no "
        "connections (but a superuser's). Fix the cause and run destroy again; or, to keep the project, declare "
        "it active (or suspended) again and run `nextmavens apply`, which restores its logins and connection limit."
    )


def reserve_dump_file(dump_dir: Path, database: str, stamp: str) -> Path:
    """The dump's 0600 file, created before anything changes (an unwritable dump folder changes nothing)."""
    target = dump_dir / f"{database}-{stamp}.dump"
    try:
        dump_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_file(target)
    except OSError as exc:
        raise DestroyError(f"cannot create the dump file {target}: {exc.strerror}; nothing was changed") from None
    return target


def dump_database(dsn: str, database: str, target: Path) -> None:
    """`pg_dump -Fc` into `target`, then `pg_restore --list` to prove the archive is readable. On failure the
    file is removed: a partial dump must not pass for a good one."""
    conninfo, password = dsn_without_password(dsn_for_database(dsn, database))
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    try:
        dumped = subprocess.run(
            [pg_tool("pg_dump"), "--format=custom", f"--file={target}", f"--dbname={conninfo}"],
            env=env,
            capture_output=True,
            text=True,
        )
        if dumped.returncode != 0:
            raise DestroyError(f"pg_dump of {database} failed: {dumped.stderr.strip()[-500:]}")
        listed = subprocess.run([pg_tool("pg_restore"), "--list", str(target)], capture_output=True, text=True)
        if listed.returncode != 0 or target.stat().st_size == 0:
            raise DestroyError(f"the dump of {database} could not be read back: {listed.stderr.strip()[-500:]}")
    except (DestroyError, OSError) as exc:
        target.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise DestroyError(f"pg_dump of {database} could not run: {exc}") from None
        raise


def block_project(cluster: psycopg.Connection, names: ProjectNames, database_exists: bool) -> None:
    """No new sessions for the project, then none left (waited for, bounded in time)."""
    for role in names.login_roles:
        if cluster.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            cluster.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
    if database_exists:
        # Superusers are exempt from the limit: the dump still connects, nobody else does. (A destroy that
        # failed after close_database left connections disallowed; the dump of a retry needs them.)
        cluster.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT 0").format(
                sql.Identifier(names.database)
            )
        )
    end_sessions(cluster, names)


def close_database(cluster: psycopg.Connection, names: ProjectNames) -> None:
    """After the dump: no connections at all, superusers' included, then none left."""
    cluster.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(names.database)))
    end_sessions(cluster, names)


def end_sessions(cluster: psycopg.Connection, names: ProjectNames) -> None:
    """Terminate every session in the project's database or of its login roles and wait until none is left."""
    deadline = time.monotonic() + SESSIONS_GONE_TIMEOUT_S
    while True:
        pids = [
            pid
            for (pid,) in cluster.execute(
                # autovacuum writes no client data and DROP DATABASE ends it itself
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND backend_type <> 'autovacuum worker' AND (datname = %s OR usename = ANY(%s))",
                (names.database, list(names.login_roles)),
            )
        ]
        if not pids:
            return
        if time.monotonic() > deadline:
            raise DestroyError(
                f"{len(pids)} session(s) of {names.ref} did not end within {SESSIONS_GONE_TIMEOUT_S:g}s "
                f"(server pids {', '.join(map(str, pids[:10]))})"
            )
        for pid in pids:
            end_session(cluster, pid, TERMINATE_WAIT_MS)


def destroy_project(cluster: psycopg.Connection, dsn: str, ref: str, dump_dir: Path) -> DestroyResult:
    names = project_names(ref)
    exists = bool(cluster.execute("SELECT 1 FROM pg_database WHERE datname = %s", (names.database,)).fetchone())
    dump_path = None
    if exists:
        prepared = cluster.execute("SELECT gid FROM pg_prepared_xacts WHERE database = %s", (names.database,))
        gids = [gid for (gid,) in prepared]
        if gids:
            raise DestroyError(
                f"{names.database} has {len(gids)} prepared transaction(s) ({', '.join(gids[:5])}): commit or roll "
                "them back (COMMIT PREPARED / ROLLBACK PREPARED) first; nothing was changed"
            )
        dump_path = reserve_dump_file(dump_dir, names.database, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    try:
        block_project(cluster, names, exists)
        if exists:
            assert dump_path is not None
            dump_database(dsn, names.database, dump_path)
            close_database(cluster, names)
    except (DestroyError, psycopg.Error) as exc:
        if dump_path is not None:
            dump_path.unlink(missing_ok=True)
        raise DestroyError(f"{exc}\n{blocked_note(ref)}") from None
    dropped: list[str] = []
    try:
        if exists:
            # Logical slots pin a database: Realtime's slot for this project goes with it (no session is left).
            cluster.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = %s AND NOT active",
                (names.database,),
            )
            cluster.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(names.database)))
        for role in names.login_roles:
            if cluster.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                cluster.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
                dropped.append(role)
    except psycopg.Error as exc:
        reason = exc.diag.message_primary or type(exc).__name__
        raise DestroyError(
            f"dropping {ref} failed: {reason}. Its dump is written ({dump_path or 'no database to dump'}); "
            f"roles dropped so far: {', '.join(dropped) or 'none'}. The project is blocked; run destroy again."
        ) from None
    return DestroyResult(dump_path, exists, tuple(dropped))
