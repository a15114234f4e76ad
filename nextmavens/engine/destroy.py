"""Destroying a project: the only path that drops data, and only after a fresh, checked dump."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from nextmavens.control.db import dsn_for_database, dsn_without_password
from nextmavens.localdb import find_bin_dir
from nextmavens.naming import project_names


class DestroyError(Exception):
    pass


@dataclass(frozen=True)
class DestroyResult:
    dump_path: Path | None
    dropped_database: bool
    dropped_roles: tuple[str, ...]


def dump_database(dsn: str, database: str, dump_dir: Path, stamp: str) -> Path:
    """`pg_dump -Fc` into a 0600 file, then `pg_restore --list` to prove the archive is readable."""
    dump_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = dump_dir / f"{database}-{stamp}.dump"
    conninfo, password = dsn_without_password(dsn_for_database(dsn, database))
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    bin_dir = find_bin_dir()
    dumped = subprocess.run(
        [str(bin_dir / "pg_dump"), "--format=custom", f"--file={target}", f"--dbname={conninfo}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if dumped.returncode != 0:
        raise DestroyError(f"pg_dump of {database} failed, nothing was dropped: {dumped.stderr.strip()}")
    listed = subprocess.run([str(bin_dir / "pg_restore"), "--list", str(target)], capture_output=True, text=True)
    if listed.returncode != 0 or target.stat().st_size == 0:
        raise DestroyError(f"the dump {target} could not be read back, nothing was dropped: {listed.stderr.strip()}")
    return target


def destroy_project(cluster: psycopg.Connection, dsn: str, ref: str, dump_dir: Path) -> DestroyResult:
    names = project_names(ref)
    exists = cluster.execute("SELECT 1 FROM pg_database WHERE datname = %s", (names.database,)).fetchone()
    dump_path = None
    if exists:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dump_path = dump_database(dsn, names.database, dump_dir, stamp)
        # Logical slots pin a database: Realtime's slot for this project goes with it.
        cluster.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active",
            (names.database,),
        )
        cluster.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(names.database)))
    dropped = []
    for role in names.login_roles:
        if cluster.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            cluster.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            dropped.append(role)
    return DestroyResult(dump_path, bool(exists), tuple(dropped))
