"""`backup restore`: getFile + download every chunk, check its sha256, then age -d | pg_restore.

Every chunk is downloaded and checked against its recorded size and sha256 before a byte of it reaches
age, so a corrupted or missing chunk stops the restore there, and the new database it was going into is
dropped. The chunks are ciphertext, kept in a private temporary folder until the restore ends (it reads
them in several passes); the decrypted dump only ever flows through a pipe from age into pg_restore. The
private key is read by age from the operator's --identity file, never stored.

The dump is replayed so that none of the tenant's SQL runs as a superuser (nextmavens.backup.replay):
the platform's parts as a superuser on the still-empty database, the project's parts in a session logged
in as a temporary role that is a member of the project's roles only.

Disaster recovery when the control database itself is lost: README "Disaster recovery". Its backups are in
the same channel (target `_platform/control`, files `platform_control.<time>.b<id>.pgdump.age.part<NNNN>`,
each caption carrying the backup id, part number and sha256), next to the master key's
(`platform_master-key...`, see nextmavens.backup.masterkey): restore the control database by hand with
age and pg_restore, then `backup recover-key`, `apply`, and `backup restore --replace` per project.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from nextmavens.backup.replay import ReplayError, list_file_text, parse_listing, plan_replay
from nextmavens.backup.settings import CONTROL_KEY, BackupSettings
from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.control.db import (
    dsn_for_database,
    dsn_without_password,
    end_database_sessions,
    end_role_sessions,
    trusted_dsn,
)
from nextmavens.control.locks import LockTimeout, apply_lock, join_work
from nextmavens.control.store import backups
from nextmavens.control.store.backups import BackupRecord
from nextmavens.engine.desired import LAYER_ROLE
from nextmavens.engine.scram import scram_verifier
from nextmavens.engine.superusers import superusers
from nextmavens.naming import PG_IDENTIFIER_MAX_BYTES, project_names

# Temporary login roles that replay a project's own objects (see restore_role).
RESTORE_ROLE_PREFIX = "nextmavens_restore_"
DATABASE_PRIVILEGES = frozenset({"CONNECT", "CREATE", "TEMPORARY"})


class RestoreError(Exception):
    pass


class ChecksumError(RestoreError):
    pass


class WrongKeyError(RestoreError):
    pass


@dataclass
class RestoreResult:
    backup_id: int
    database: str
    seconds: float
    replaced: str | None = None  # the old live database, kept under this name


def choose_backup(conn: psycopg.Connection, target: str, backup_id: int | None) -> BackupRecord:
    if backup_id is None:
        record = backups.latest_complete(conn, target)
        if record is None:
            raise RestoreError(f"no complete backup of {target}")
        return record
    record = backups.get(conn, backup_id)
    if record is None or record.target != target:
        raise RestoreError(f"backup {backup_id} is not a backup of {target}")
    if record.status != "complete":
        raise RestoreError(f"backup {backup_id} is {record.status}, not complete: it cannot be restored")
    return record


def identity_recipient(identity: Path, age_keygen: str = "age-keygen") -> str | None:
    """The public key of an age identity file, or None when it cannot be derived (e.g. a passphrase)."""
    try:
        result = subprocess.run(
            [age_keygen, "-y", str(identity)],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return lines[0] if result.returncode == 0 and lines else None


def check_identity(record: BackupRecord, identity: Path) -> None:
    if not identity.is_file():
        raise WrongKeyError(f"identity file {identity} does not exist")
    public = identity_recipient(identity)
    if public is not None and public not in (record.recipient, record.drill_recipient):
        raise WrongKeyError(
            f"the identity in {identity} is for {public}, but backup {record.id} was encrypted to "
            f"{record.recipient}: wrong key"
        )


def chunk_records(conn: psycopg.Connection, record: BackupRecord) -> list[backups.ChunkRecord]:
    chunks = backups.chunks(conn, record.id)
    if len(chunks) != record.chunk_count or any(chunk.deleted for chunk in chunks):
        raise RestoreError(f"backup {record.id}: its chunk records are incomplete or deleted")
    return chunks


def download_verified(
    client: TelegramClient, record: BackupRecord, chunks: list[backups.ChunkRecord], folder: Path
) -> Iterator[Path]:
    """Download each chunk in order and yield its path only once its size and sha256 match the record."""
    for chunk in chunks:
        path = folder / f"part{chunk.seq:04d}"
        try:
            # Hashed as it arrives (one pass over the bytes), checked before anything reads the file.
            size, digest = client.download_sha256(chunk.file_id, path)
        except TelegramError as exc:
            raise RestoreError(f"backup {record.id} part {chunk.seq}: download failed: {exc}") from None
        if size != chunk.size or digest != chunk.sha256:
            raise ChecksumError(
                f"backup {record.id} part {chunk.seq}: checksum mismatch (sha256 {digest[:16]}…, "
                f"{size} bytes; recorded {chunk.sha256[:16]}…, {chunk.size} bytes): the chunk is corrupted"
            )
        yield path


def cluster_dsn(settings: BackupSettings) -> str:
    """Creating, dropping and renaming databases go through the `postgres` database: the configured DSN
    may name the control database, which a rename of it (or a drop) could not run from."""
    return dsn_for_database(settings.dsn, "postgres")


def create_database(settings: BackupSettings, name: str, owner: str | None) -> None:
    with psycopg.connect(cluster_dsn(settings), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise RestoreError(f"database {name} already exists; restore only ever creates a new database")
        has_owner = owner and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
        if has_owner:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(str(owner)))
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


def drop_database(settings: BackupSettings, name: str) -> None:
    with psycopg.connect(cluster_dsn(settings), autocommit=True) as conn:
        end_database_sessions(conn, name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def restore_argv(
    settings: BackupSettings, database: str, *options: str, user: str | None = None, password: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """pg_restore reading the archive from stdin. As the DSN's user, or as `user` with `password`; a
    password goes by environment, never argv."""
    target = dsn_for_database(settings.dsn, database)
    if user is not None:
        target = make_conninfo(target, user=user)
    dsn, own_password = dsn_without_password(target)
    argv = [settings.tool("pg_restore"), "--exit-on-error", "--no-password", *options, f"--dbname={dsn}"]
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    secret = password if user is not None else own_password
    if secret is not None:
        env["PGPASSWORD"] = secret
    return argv, env


def decrypt_argv(settings: BackupSettings, identity: Path) -> list[str]:
    return [settings.age_bin, "--decrypt", "--identity", str(identity)]


def decrypted_run(
    settings: BackupSettings, parts: list[Path], identity: Path, argv: list[str], env: dict[str, str]
) -> bytes:
    """parts | age -d -i IDENTITY | argv; returns argv's stdout, with clear errors for each side.

    argv may stop reading early (`pg_restore --list` needs only the table of contents): that is a
    success when argv itself succeeds, since every part's sha256 was checked before this runs."""
    with (
        tempfile.TemporaryFile() as age_err,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as restore_err,
    ):
        age = subprocess.Popen(
            decrypt_argv(settings, identity), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=age_err
        )
        restore = subprocess.Popen(argv, stdin=age.stdout, stdout=out, stderr=restore_err, env=env)
        assert age.stdin is not None and age.stdout is not None
        age.stdout.close()
        try:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, age.stdin, 1024 * 1024)
        except BrokenPipeError:
            pass  # age (or pg_restore behind it) stopped reading: their exit codes say why
        finally:
            try:
                age.stdin.close()
            except BrokenPipeError:
                pass
            age_code = age.wait()
            restore_code = restore.wait()
        if restore_code == 0:
            out.seek(0)
            return out.read()
        if age_code != 0:
            age_err.seek(0)
            message = age_err.read().decode(errors="replace").strip()[-500:]
            if "no identity matched" in message:
                raise WrongKeyError(f"decryption failed: the identity does not match this backup ({message})")
            raise RestoreError(f"decryption failed: age exited {age_code}: {message}")
        restore_err.seek(0)
        message = restore_err.read().decode(errors="replace").strip()[-800:]
        raise RestoreError(f"pg_restore exited {restore_code}: {message}")


@dataclass(frozen=True)
class Identities:
    """Who may replay what: the managed superusers that are superusers now, and the project's roles."""

    superusers: tuple[str, ...]
    project_roles: tuple[str, ...]
    layer: str | None  # the platform's superuser role that owns what it creates, when it exists
    missing: tuple[str, ...] = ()  # the project's roles that do not exist on this server


def identities(settings: BackupSettings, target: str) -> Identities:
    wanted = () if target == CONTROL_KEY or "/" not in target else project_names(target.split("/", 1)[1]).login_roles
    with psycopg.connect(cluster_dsn(settings), autocommit=True) as conn:
        trusted, _ = superusers(conn)
        rows = conn.execute("SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY(%s)", (list(wanted),))
        found = {str(name): bool(sup) for name, sup in rows.fetchall()}
    elevated = sorted(name for name, sup in found.items() if sup)
    if elevated:
        raise RestoreError(
            f"role {', '.join(elevated)} of {target} is a superuser, which the platform never makes it: "
            "refusing to restore (see `nextmavens status`)"
        )
    return Identities(
        superusers=tuple(trusted),
        project_roles=tuple(name for name in wanted if name in found),
        layer=LAYER_ROLE if LAYER_ROLE in trusted else None,
        missing=tuple(name for name in wanted if name not in found),
    )


@contextmanager
def restore_role(settings: BackupSettings, database: str, member_of: list[str]) -> Iterator[tuple[str, str]]:
    """A temporary login role, no superuser, member of `member_of` only, allowed one connection to
    `database`; dropped afterwards with anything it came to own. Yields (name, password). The password
    reaches the server only as a SCRAM verifier, and pg_restore only through its environment."""
    name = f"{RESTORE_ROLE_PREFIX}{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(32)
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    role = sql.Identifier(name)
    with psycopg.connect(cluster_dsn(settings), autocommit=True) as conn:
        _sweep_expired_restore_roles(conn)
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS"
                " CONNECTION LIMIT 1 PASSWORD {} VALID UNTIL {}"
            ).format(role, sql.Literal(scram_verifier(password)), sql.Literal(until))
        )
        try:
            for parent in member_of:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent), role))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role))
            yield name, password
        finally:
            end_role_sessions(conn, name)
            with psycopg.connect(trusted_dsn(dsn_for_database(settings.dsn, database)), autocommit=True) as inside:
                # The role legitimately owns nothing (pg_restore hands each object to its owner): anything
                # it does own was made by code running during the restore, and goes.
                inside.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def _sweep_expired_restore_roles(conn: psycopg.Connection) -> None:
    """Roles left by a restore that was killed: expired (they cannot log in), dropped when nothing holds them."""
    expired = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE %s AND rolvaliduntil < now()",
        (RESTORE_ROLE_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    for (name,) in expired:
        role = sql.Identifier(str(name))
        try:
            for (database,) in conn.execute(
                "SELECT d.datname FROM pg_database d, aclexplode(d.datacl) a WHERE a.grantee = %s::regrole",
                (str(name),),
            ).fetchall():
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))
        except psycopg.Error:
            continue  # it still owns something somewhere: harmless, since it can no longer log in


def decrypt_into(
    settings: BackupSettings, parts: Iterable[Path], identity: Path, database: str, target: str = CONTROL_KEY
) -> None:
    """Restore the archive in `parts` into `database` without ever running the tenant's SQL as a superuser
    (see nextmavens.backup.replay): list its entries, then replay them in up to four pg_restore runs over
    the same ciphertext. `parts` may be lazy (download_verified): every part is downloaded and checked
    before the first byte is decrypted; only ciphertext is ever on disk."""
    files = list(parts)
    argv, env = restore_argv(settings, database, "--list")
    listing = decrypted_run(settings, files, identity, argv, env).decode(errors="replace")
    who = identities(settings, target)
    try:
        plan = plan_replay(parse_listing(listing), who.superusers, who.project_roles, f"the backup of {target}")
    except ReplayError as exc:
        hint = f" (missing here: {', '.join(who.missing)}; run `nextmavens apply` first)" if who.missing else ""
        raise RestoreError(f"{exc}{hint}") from None
    folder = files[0].parent if files else settings.work_dir
    platform = [f"--role={who.layer}"] if who.layer else []

    def replay(
        step: str, dump_ids: list[int], *sections: str, user: str | None = None, password: str | None = None
    ) -> None:
        if not dump_ids:
            return
        listed = folder / f"{step.replace(' ', '-')}.list"
        listed.write_text(list_file_text(dump_ids))
        options = [f"--use-list={listed}", *(f"--section={section}" for section in sections)]
        argv, env = restore_argv(
            settings, database, *options, *(platform if user is None else []), user=user, password=password
        )
        try:
            decrypted_run(settings, files, identity, argv, env)
        except RestoreError as exc:
            raise type(exc)(f"{step}: {exc}") from None

    replay("platform definitions", plan.platform, "pre-data")
    if plan.tenant:
        with restore_role(settings, database, plan.tenant_roles) as (user, password):
            replay("project objects", plan.tenant, user=user, password=password)
    replay("platform data", plan.platform, "data", "post-data")
    replay("platform last", plan.platform_last)


def scratch_name(base: str, suffix: str) -> str:
    """`<base>_<suffix>`, cut so it fits PostgreSQL's identifier limit."""
    room = PG_IDENTIFIER_MAX_BYTES - len(suffix) - 1
    return f"{base.encode()[:room].decode(errors='ignore')}_{suffix}"


def restore_backup(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    record: BackupRecord,
    identity: Path,
    into: str,
    log: Callable[[str], None] = lambda message: None,
) -> RestoreResult:
    """Restore one complete backup into a new database `into`; on any failure that database is dropped."""
    started = time.monotonic()
    check_identity(record, identity)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"nextmavens-restore-{record.id}-", dir=settings.work_dir))
    folder.chmod(0o700)
    try:
        chunks = chunk_records(conn, record)
        create_database(settings, into, record.db_owner)
        try:
            decrypt_into(settings, download_verified(client, record, chunks, folder), identity, into, record.target)
        except BaseException:
            drop_database(settings, into)
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.monotonic() - started
    log(f"backup {record.id}: {len(chunks)} chunks downloaded, verified, decrypted and restored in {seconds:.1f}s")
    return RestoreResult(record.id, into, seconds)


def replace_locked(
    settings: BackupSettings,
    control: psycopg.Connection,
    live: str,
    restored: str,
    log: Callable[[str], None] = lambda message: None,
) -> str:
    """replace_live while holding the engine's apply lock: an apply (the reconcile timer's, every few
    minutes) waits for the swap instead of planning against databases being renamed under it."""
    try:
        with apply_lock(settings.dsn, control, settings.lock_timeout_s):
            return replace_live(settings, live, restored, log)
    except LockTimeout as exc:
        raise RestoreError(str(exc)) from None


# Settings stored as a list of separately quoted items (as pg_dump's variable_is_guc_list_quote lists them).
LIST_QUOTE_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)


def split_setting_list(value: str) -> list[str]:
    """The items of a stored list setting, as PostgreSQL's SplitGUCList reads them: comma-separated,
    blanks around items dropped, an item in double quotes taken as is ("" standing for one quote)."""
    items: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i].isspace():
            i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise RestoreError(f"unterminated quote in setting value {value!r}")
                if value[i] == '"':
                    if i + 1 < n and value[i + 1] == '"':
                        chars.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(value[i])
                i += 1
            items.append("".join(chars))
        else:
            start = i
            while i < n and value[i] != ",":
                i += 1
            items.append(value[start:i].strip())
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            return items
        if value[i] != ",":
            raise RestoreError(f"unexpected character in setting value {value!r}")
        i += 1


SWAP_ATTEMPTS = 3  # a client reconnecting between ending its session and the rename's lock aborts one try


def replace_live(
    settings: BackupSettings, live: str, restored: str, log: Callable[[str], None] = lambda message: None
) -> str:
    """Swap a restored database in for the live one, in one transaction: both renames, the kept database's
    connections disabled, the grants, settings and connection limit carried over. A crash or kill at any point
    leaves either the old state or the new one, never the live name missing; the caller holds the
    engine's apply lock, so no apply plans against a half-swapped cluster. The live database is kept,
    renamed, never dropped."""
    kept = scratch_name(live, f"replaced_{datetime.now(UTC):%Y%m%d%H%M%S}")
    with psycopg.connect(cluster_dsn(settings)) as conn:
        join_work(conn)  # a swap still running after this process died holds up the next lock holder
        conn.commit()  # the mark is the session's; each try below is then a transaction of its own
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                with conn.transaction():
                    _swap(conn, live, restored, kept)
                break
            except psycopg.errors.ObjectInUse as exc:
                if attempt == SWAP_ATTEMPTS:
                    raise RestoreError(
                        f"{live} kept being used while swapping ({exc}); nothing replaced, "
                        f"the restored copy is kept as {restored}"
                    ) from None
    log(f"{live} replaced; the previous database is kept as {kept}")
    return kept


def _swap(conn: psycopg.Connection, live: str, restored: str, kept: str) -> None:
    present = {
        str(name)
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([live, restored, kept],)
        ).fetchall()
    }
    if live not in present or restored not in present or kept in present:
        raise RestoreError(
            f"cannot swap: expected databases {live} and {restored} and no {kept}, found {sorted(present)}; "
            "nothing replaced"
        )
    # Who owns and may use the database follows the name: the copy gets exactly the live one's privileges.
    acl_sql = (
        "SELECT a.privilege_type, a.grantee = 0, pg_get_userbyid(a.grantee) FROM pg_database d,"
        " aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = %s"
    )
    acl = conn.execute(acl_sql, (live,)).fetchall()
    stale = {(public, grantee) for _, public, grantee in conn.execute(acl_sql, (restored,)).fetchall()}
    limit_row = conn.execute(
        "SELECT datconnlimit, pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (live,)
    ).fetchone()
    assert limit_row is not None
    # Settings on the database (and per role in it) belong to its OID, not its name: they go with the copy.
    settings = conn.execute(
        "SELECT pg_get_userbyid(s.setrole), s.setrole = 0, unnest(s.setconfig) FROM pg_db_role_setting s"
        " JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s ORDER BY 1, 3",
        (live,),
    ).fetchall()
    end_database_sessions(conn, live)
    # The rename locks the database (new sessions wait) and waits a few seconds for ended sessions to go.
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(live), sql.Identifier(kept)))
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(kept)))
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restored), sql.Identifier(live)))
    conn.execute(
        sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(sql.Identifier(live), sql.Literal(int(limit_row[0])))
    )
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(live), sql.Identifier(limit_row[1])))
    for role, whole_database, entry in settings:
        name, _, value = str(entry).partition("=")
        items = split_setting_list(value) if name in LIST_QUOTE_SETTINGS else [value]
        target = (
            sql.SQL("DATABASE {}").format(sql.Identifier(live))
            if whole_database
            else sql.SQL("ROLE {} IN DATABASE {}").format(sql.Identifier(str(role)), sql.Identifier(live))
        )
        conn.execute(
            sql.SQL("ALTER {} SET {} TO {}").format(
                target, sql.Identifier(name), sql.SQL(", ").join(sql.Literal(item) for item in items)
            )
        )
    def who(public: bool, grantee: str) -> sql.Composable:
        return sql.SQL("PUBLIC") if public else sql.Identifier(grantee)

    for public, grantee in sorted(stale | {(True, "")}):
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(live), who(public, grantee)))
    for privilege, public, grantee in acl:
        if privilege in DATABASE_PRIVILEGES:
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege), sql.Identifier(live), who(public, grantee)
                )
            )
