"""Connecting to the cluster and to the control database, which the engine creates and migrates itself."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nextmavens.naming import CONTROL_DATABASE

MIGRATIONS_PACKAGE = "nextmavens.control.migrations"


def dsn_for_database(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


def dsn_without_password(dsn: str) -> tuple[str, str | None]:
    """(DSN with the password removed, the password): for passing the password to tools by environment,
    where `ps` cannot see it."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    return make_conninfo("", **params), (str(password) if password is not None else None)


def connect_cluster(dsn: str, dbname: str | None = None, trusted_path: bool = False) -> psycopg.Connection:
    """An autocommit superuser connection (CREATE DATABASE cannot run inside a transaction).

    `trusted_path`: search only pg_catalog, whatever the database's own settings say (a client option
    outranks ALTER DATABASE/ROLE ... SET); for sessions inside a project's database.
    """
    target = dsn_for_database(dsn, dbname) if dbname else dsn
    if trusted_path:
        target = make_conninfo(target, options="-c search_path=pg_catalog,pg_temp")
    return psycopg.connect(target, autocommit=True, application_name="nextmavens")


def connect_control(dsn: str) -> psycopg.Connection:
    """The control database, created and migrated on first use."""
    target = dsn_for_database(dsn, CONTROL_DATABASE)
    try:
        conn = psycopg.connect(target, autocommit=True, application_name="nextmavens")
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        ensure_control_database(dsn)  # the first run only: one extra connection to create it
        conn = psycopg.connect(target, autocommit=True, application_name="nextmavens")
    migrate(conn)
    return conn


def ensure_control_database(dsn: str) -> None:
    with connect_cluster(dsn) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (CONTROL_DATABASE,)).fetchone()
        if exists:
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(CONTROL_DATABASE)))
        # The control database holds encrypted secrets: only superusers may connect.
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(CONTROL_DATABASE)))


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) for every migration shipped with the package, in order."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction, serialized by a lock so two processes
    starting at once do not both apply one. Returns the versions applied."""
    applied_now: list[str] = []
    shipped = migration_files()
    # The common case, every run: one cheap read finds nothing pending and takes no lock.
    known = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if known and known[0]:
        recorded = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        if all(version in recorded for version, _ in shipped):
            return applied_now
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for version, body in shipped:
        with conn.transaction():
            conn.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone()
            if done:
                continue
            conn.execute(body.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now
