"""`backup restore`: getFile + download every chunk, check its sha256, then age -d | pg_restore.

Chunks are downloaded in order while earlier ones are decrypted and restored; each is checked against its
recorded size and sha256 before a byte of it reaches age, so a corrupted or missing chunk stops the
restore there, and the new database it was going into is dropped. The chunks are ciphertext, so a few of
them in a private temporary folder on disk are safe; the decrypted dump only ever flows through a pipe
from age into pg_restore. The private key is read by age from the operator's --identity file, never stored.

Disaster recovery when the control database itself is lost: its backups are in the same channel (target
`_platform/control`, files `platform_control.<time>.b<id>.pgdump.age.part<NNNN>`, each caption carrying
the backup id, part number and sha256). Download the newest set with any Telegram client, check them
with `sha256sum`, then `cat part* | age -d -i KEY | pg_restore -d nextmavens` into a fresh control
database; `nextmavens backup restore` then finds every project backup again.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from nextmavens.backup import records
from nextmavens.backup.records import BackupRecord
from nextmavens.backup.settings import BackupSettings
from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.control.db import dsn_for_database, dsn_without_password
from nextmavens.naming import PG_IDENTIFIER_MAX_BYTES

TERMINATE_SQL = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"


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
        record = records.latest_complete(conn, target)
        if record is None:
            raise RestoreError(f"no complete backup of {target}")
        return record
    record = records.get(conn, backup_id)
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


def chunk_records(conn: psycopg.Connection, record: BackupRecord) -> list[records.ChunkRecord]:
    chunks = records.chunks(conn, record.id)
    if len(chunks) != record.chunk_count or any(chunk.deleted for chunk in chunks):
        raise RestoreError(f"backup {record.id}: its chunk records are incomplete or deleted")
    return chunks


def download_verified(
    client: TelegramClient, record: BackupRecord, chunks: list[records.ChunkRecord], folder: Path
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
        conn.execute(
            TERMINATE_SQL,
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def restore_argv(settings: BackupSettings, database: str) -> tuple[list[str], dict[str, str]]:
    dsn, password = dsn_without_password(dsn_for_database(settings.dsn, database))
    argv = [settings.tool("pg_restore"), "--exit-on-error", "--no-password", f"--dbname={dsn}"]
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return argv, env


def decrypt_argv(settings: BackupSettings, identity: Path) -> list[str]:
    return [settings.age_bin, "--decrypt", "--identity", str(identity)]


def decrypt_into(
    settings: BackupSettings, parts: Iterable[Path], identity: Path, database: str, remove_after: bool = False
) -> None:
    """parts | age -d -i IDENTITY | pg_restore -d DATABASE, with clear errors for each side.

    `parts` may be lazy (download_verified): a thread pulls the next verified chunk while the current one
    is decrypted and restored, through a small queue, so only a few chunks are ever on disk
    (remove_after deletes each once fed). A chunk that fails its checksum stops the stream there: age
    and pg_restore then fail on the cut input, and the checksum error is the one raised."""
    argv, env = restore_argv(settings, database)
    ready: queue.Queue[Path | BaseException | None] = queue.Queue(maxsize=3)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for part in parts:
                while not stop.is_set():
                    try:
                        ready.put(part, timeout=1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the feeding thread
            ready.put(exc)

    with tempfile.TemporaryFile() as age_err, tempfile.TemporaryFile() as restore_err:
        age = subprocess.Popen(
            decrypt_argv(settings, identity), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=age_err
        )
        restore = subprocess.Popen(argv, stdin=age.stdout, stdout=subprocess.DEVNULL, stderr=restore_err, env=env)
        assert age.stdin is not None and age.stdout is not None
        age.stdout.close()
        fetcher = threading.Thread(target=fetch, daemon=True)
        fetcher.start()
        source_error: BaseException | None = None
        try:
            while True:
                item = ready.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    source_error = item
                    break
                with item.open("rb") as handle:
                    shutil.copyfileobj(handle, age.stdin, 1024 * 1024)
                if remove_after:
                    item.unlink(missing_ok=True)
        except BrokenPipeError:
            pass  # age stopped reading: its exit code says why
        finally:
            stop.set()
            try:
                age.stdin.close()
            except BrokenPipeError:
                pass
            age_code = age.wait()
            restore_code = restore.wait()
            fetcher.join(timeout=30)
        if source_error is not None:
            raise source_error
        if age_code != 0:
            age_err.seek(0)
            message = age_err.read().decode(errors="replace").strip()[-500:]
            if "no identity matched" in message:
                raise WrongKeyError(f"decryption failed: the identity does not match this backup ({message})")
            raise RestoreError(f"decryption failed: age exited {age_code}: {message}")
        if restore_code != 0:
            restore_err.seek(0)
            message = restore_err.read().decode(errors="replace").strip()[-800:]
            raise RestoreError(f"pg_restore exited {restore_code}: {message}")


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
            decrypt_into(settings, download_verified(client, record, chunks, folder), identity, into, remove_after=True)
        except BaseException:
            drop_database(settings, into)
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.monotonic() - started
    log(f"backup {record.id}: {len(chunks)} chunks downloaded, verified, decrypted and restored in {seconds:.1f}s")
    return RestoreResult(record.id, into, seconds)


def replace_live(
    settings: BackupSettings, live: str, restored: str, log: Callable[[str], None] = lambda message: None
) -> str:
    """Swap a restored database in for the live one. The live one is kept, renamed, never dropped, with
    connections disabled. Its owner (set at creation), database-level grants and connection limit carry
    over; anything else set on the database itself is the engine's to converge on its next apply."""
    kept = scratch_name(live, f"replaced_{datetime.now(UTC):%Y%m%d%H%M%S}")
    with psycopg.connect(cluster_dsn(settings), autocommit=True) as conn:
        acl = conn.execute(
            "SELECT a.privilege_type, pg_get_userbyid(a.grantee) FROM pg_database d,"
            " aclexplode(d.datacl) a WHERE d.datname = %s AND a.grantee <> 0",
            (live,),
        ).fetchall()
        limit_row = conn.execute("SELECT datconnlimit FROM pg_database WHERE datname = %s", (live,)).fetchone()
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(live)))
        conn.execute(
            TERMINATE_SQL,
            (live,),
        )
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(live), sql.Identifier(kept)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restored), sql.Identifier(live)))
        if limit_row is not None:
            conn.execute(
                sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
                    sql.Identifier(live), sql.Literal(int(limit_row[0]))
                )
            )
        for privilege, grantee in acl:
            if privilege not in DATABASE_PRIVILEGES:
                continue
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege), sql.Identifier(live), sql.Identifier(grantee)
                )
            )
    log(f"{live} replaced; the previous database is kept as {kept}")
    return kept
