"""Connecting to the cluster and to the control database, which the engine creates and migrates itself."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nextmavens.naming import CONTROL_DATABASE, project_names

MIGRATIONS_PACKAGE = "nextmavens.control.migrations"
# Advisory lock keys (per database): creating the control database (held in `postgres`), migrating it.
CREATE_LOCK_KEY = 7_242_016_310
MIGRATE_LOCK_KEY = 7_242_016_311
SETUP_LOCK_TIMEOUT = "60s"


# Client options for a superuser session inside a project's database (see connect_cluster).
TRUSTED_OPTIONS = " ".join(
    f"-c {setting}"
    for setting in (
        "search_path=pg_catalog,pg_temp",
        "role=none",
        "statement_timeout=0",
        "lock_timeout=0",
        "idle_session_timeout=0",
        "idle_in_transaction_session_timeout=0",
        "default_transaction_read_only=off",
    )
)


def dsn_for_database(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


def owner_dsn(
    dsn: str,
    ref: str,
    password: str,
    statement_timeout_ms: int,
    application_name: str = "nextmavens-migrations",
    search_path: str | None = None,
    role: str | None = None,
) -> str:
    """The service's DSN (host, port, TLS), logged in as the project's owner (or another of its login roles,
    `role`) into its database."""
    names = project_names(ref)
    # Client options outrank the owner's ALTER ROLE/DATABASE settings; SQL may still change them, so the
    # migrations' watchdog (cancel) bounds the whole run as well.
    options = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms}"
    if search_path is not None:
        options += f" -c search_path={search_path}"
    return make_conninfo(
        dsn_for_database(dsn, names.database),
        user=role or names.owner,
        password=password,
        application_name=application_name,
        options=options,
    )


def dsn_without_password(dsn: str) -> tuple[str, str | None]:
    """(DSN with the password removed, the password): for passing the password to tools by environment,
    where `ps` cannot see it."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    return make_conninfo("", **params), (str(password) if password is not None else None)


def trusted_dsn(dsn: str) -> str:
    """`dsn` for a superuser session inside a project's database: TRUSTED_OPTIONS added to its own options."""
    existing = conninfo_to_dict(dsn).get("options")
    return make_conninfo(dsn, options=f"{existing} {TRUSTED_OPTIONS}" if existing else TRUSTED_OPTIONS)


def connect_cluster(dsn: str, dbname: str | None = None, trusted_path: bool = False) -> psycopg.Connection:
    """An autocommit superuser connection (CREATE DATABASE cannot run inside a transaction).

    `trusted_path`: for sessions inside a project's database, whose owner may ALTER DATABASE ... SET. Client
    options outrank those settings: search only pg_catalog, run as the connecting superuser (not a `role`
    the owner set), and no timeout or read-only default of the owner's cancels or ends the session.
    """
    target = dsn_for_database(dsn, dbname) if dbname else dsn
    if trusted_path:
        target = trusted_dsn(target)
    return psycopg.connect(target, autocommit=True, application_name="nextmavens")


def end_role_sessions(conn: psycopg.Connection, role: str) -> int:
    """End every session logged in as `role`; how many were asked to end."""
    row = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s", (role,)
    ).fetchone()
    return int(row[0]) if row else 0


def end_database_sessions(conn: psycopg.Connection, database: str) -> None:
    """End every other session in `database` (before it is dropped or renamed)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    )


def end_session(conn: psycopg.Connection, pid: int, wait_ms: int) -> None:
    """End one server process, waiting up to `wait_ms` for it to go."""
    conn.execute("SELECT pg_terminate_backend(%s, %s)", (pid, wait_ms))


def connect_control(dsn: str) -> psycopg.Connection:
    """The control database, created and migrated on first use."""
    target = dsn_for_database(dsn, CONTROL_DATABASE)
    try:
        conn = psycopg.connect(target, autocommit=True, application_name="nextmavens")
    except psycopg.OperationalError as exc:
        # Missing, or still closed while another process (or a killed one) sets it up.
        if "does not exist" not in str(exc) and "not currently accepting connections" not in str(exc):
            raise
        ensure_control_database(dsn)  # the first run only: one extra connection to create it
        conn = psycopg.connect(target, autocommit=True, application_name="nextmavens")
    migrate(conn)
    return conn


def ensure_control_database(dsn: str) -> None:
    """Create the control database, once however many processes start at once on a new cluster.

    It is created closed and opened only when PUBLIC's default CONNECT is revoked: it holds the sealed secrets,
    and only superusers may connect. A run killed half-way leaves it closed, and the next one finishes it.
    """
    name = sql.Identifier(CONTROL_DATABASE)
    with connect_cluster(dsn) as conn:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (SETUP_LOCK_TIMEOUT,))
        conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_LOCK_KEY,))  # released when the connection ends
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (CONTROL_DATABASE,)).fetchone()
        if row is not None and row[0]:
            return
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) for every migration shipped with the package, in order."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def pending_migrations(conn: psycopg.Connection, shipped: list[tuple[str, str]] | None = None) -> list[str]:
    """The shipped migrations the control database has not recorded (all of them before the first); reads only."""
    versions = [version for version, _ in (migration_files() if shipped is None else shipped)]
    known = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not (known and known[0]):
        return versions
    recorded = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    return [version for version in versions if version not in recorded]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction, serialized by a lock so two processes
    starting at once do not both apply one. Returns the versions applied."""
    applied_now: list[str] = []
    shipped = migration_files()
    # The common case, every run: one cheap read finds nothing pending and takes no lock.
    if not pending_migrations(conn, shipped):
        return applied_now
    # One migrating process at a time (CREATE TABLE IF NOT EXISTS itself is not safe against a concurrent one).
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (SETUP_LOCK_TIMEOUT,))
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for version, body in shipped:
            with conn.transaction():
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone()
                if done:
                    continue
                conn.execute(body.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied_now.append(version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
        conn.execute("SELECT set_config('lock_timeout', '0', false)")
    return applied_now
