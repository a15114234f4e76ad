"""`backup run`: pg_dump -Fc | age -r RECIPIENT | chunks below 20 MB | sendDocument, recorded per chunk.

Streaming throughout: pg_dump's output goes straight into age through an OS pipe; Python reads age's
ciphertext into one chunk buffer at a time and hands it to an uploader thread through a queue of depth one,
so memory is about three chunks whatever the size of the database, and nothing unencrypted touches the
disk. A backup is marked complete only when every chunk is uploaded and recorded with its sha256 (checked
again in the same transaction); otherwise its uploaded messages are deleted and it is recorded as failed.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import psycopg

from nextmavens.backup.manifests import backup_manifests
from nextmavens.backup.masterkey import backup_master_key
from nextmavens.backup.settings import CONTROL_KEY, BackupSettings
from nextmavens.backup.stats import safe_dsn, table_stats
from nextmavens.backup.telegram import TelegramClient, TelegramError
from nextmavens.backup.uploads import BackupResult, chunk_name, delete_uploaded
from nextmavens.control.db import dsn_for_database, dsn_without_password
from nextmavens.control.locks import release_backup_lock, try_backup_lock
from nextmavens.control.store import backups

STATS_TIMEOUT = 6 * 3600  # seconds a drill backup waits for its table figures after the dump ends


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    key: str  # ORG/PROJECT, or CONTROL_KEY
    database: str
    schedule: str = "daily"
    retention_days: int = 14


def dump_argv(settings: BackupSettings, database: str, snapshot: str | None = None) -> tuple[list[str], dict[str, str]]:
    """pg_dump in custom format to stdout; the password goes by environment, never argv."""
    dsn, password = dsn_without_password(dsn_for_database(settings.dsn, database))
    argv = [settings.tool("pg_dump"), "--format=custom", "--no-password", f"--dbname={dsn}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return argv, env


def encrypt_argv(settings: BackupSettings, extra_recipient: str | None = None) -> list[str]:
    argv = [settings.age_bin, "--encrypt", "--recipient", settings.recipient]
    if extra_recipient:
        argv += ["--recipient", extra_recipient]
    return argv


def read_chunks(stream: IO[bytes], chunk_bytes: int) -> Any:
    """Yield bytearrays of exactly chunk_bytes (the last one shorter) read from a pipe."""
    while True:
        buffer = bytearray(chunk_bytes)
        view = memoryview(buffer)
        filled = 0
        while filled < chunk_bytes:
            count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                break
            filled += count
        view.release()
        if filled == 0:
            return
        if filled < chunk_bytes:
            del buffer[filled:]
            yield buffer
            return
        yield buffer


@dataclass
class _Uploader:
    client: TelegramClient
    conn: psycopg.Connection
    backup_id: int
    target: str
    started: datetime
    jobs: queue.Queue[tuple[int, bytearray] | None] = field(default_factory=lambda: queue.Queue(maxsize=1))
    error: BaseException | None = None
    uploaded: int = 0
    total_bytes: int = 0

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None or self.error is not None:
                if job is None:
                    return
                continue
            seq, data = job
            try:
                digest = hashlib.sha256(data).hexdigest()
                name = chunk_name(self.target, self.backup_id, seq, self.started)
                caption = f"nextmavens backup {self.backup_id} {self.target} part {seq} sha256={digest}"
                document = self.client.send_document(data, name, caption)
                backups.add_chunk(
                    self.conn,
                    self.backup_id,
                    seq,
                    document.message_id,
                    document.file_id,
                    document.file_unique_id,
                    len(data),
                    digest,
                )
                self.uploaded += 1
                self.total_bytes += len(data)
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                self.error = exc


def _snapshot_stats(dsn: str, ready: threading.Event, holder: dict[str, Any], done: threading.Event) -> None:
    """Export a snapshot for pg_dump, compute table stats in it, keep it open until the dump is done."""
    try:
        with psycopg.connect(safe_dsn(dsn), application_name="nextmavens-backup-stats") as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            holder["snapshot"] = str(row[0])
            ready.set()
            holder["stats"] = table_stats(conn)
            done.wait(timeout=24 * 3600)
            conn.execute("COMMIT")
    except BaseException as exc:  # noqa: BLE001
        holder["error"] = exc
        ready.set()


def database_owner(settings: BackupSettings, database: str) -> str | None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return str(row[0]) if row else None


def backup_target(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    target: Target,
    kind: str = "scheduled",
    with_stats: bool = False,
    log: Callable[[str], None] = lambda message: None,
    drill_recipient: str | None = None,
) -> BackupResult:
    started_clock = time.monotonic()
    started = datetime.now(UTC)
    owner = database_owner(settings, target.database)
    backup_id = backups.start(conn, target.key, target.database, kind, settings.recipient, os.getpid(), drill_recipient)
    result = BackupResult(target=target.key, backup_id=backup_id, ok=False)
    if owner is None:
        result.error = f"database {target.database} does not exist"
        backups.fail(conn, backup_id, result.error, None)
        return result
    missing = [tool for tool in (settings.tool("pg_dump"), settings.age_bin) if shutil.which(tool) is None]
    if missing:
        result.error = f"not installed: {', '.join(missing)}"
        backups.fail(conn, backup_id, result.error, None)
        return result

    stats_holder: dict[str, Any] = {}
    stats_done = threading.Event()
    stats_thread: threading.Thread | None = None
    snapshot: str | None = None
    if with_stats:
        ready = threading.Event()
        stats_thread = threading.Thread(
            target=_snapshot_stats,
            args=(dsn_for_database(settings.dsn, target.database), ready, stats_holder, stats_done),
            daemon=True,
        )
        stats_thread.start()
        ready.wait(timeout=120)
        snapshot = stats_holder.get("snapshot")
        if snapshot is None:
            stats_done.set()
            result.error = f"could not export a snapshot for the table figures: {stats_holder.get('error')}"
            backups.fail(conn, backup_id, result.error, None)
            return result

    uploader = _Uploader(client, conn, backup_id, target.key, started)
    worker = threading.Thread(target=uploader.run, name=f"upload-{backup_id}", daemon=True)
    worker.start()
    argv, env = dump_argv(settings, target.database, snapshot)
    error: str | None = None
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as age_err:
        dump = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=dump_err, env=env)
        age = subprocess.Popen(
            encrypt_argv(settings, drill_recipient), stdin=dump.stdout, stdout=subprocess.PIPE, stderr=age_err
        )
        assert dump.stdout is not None and age.stdout is not None
        dump.stdout.close()  # age holds the read end now; pg_dump sees SIGPIPE if age dies
        chunks = 0
        try:
            for seq, data in enumerate(read_chunks(age.stdout, settings.chunk_bytes)):
                if uploader.error is not None:
                    break
                uploader.jobs.put((seq, data))
                chunks = seq + 1
        finally:
            if uploader.error is not None:
                # Stop producing: our own children, ended by their process handles.
                for proc in (dump, age):
                    if proc.poll() is None:
                        proc.kill()
            uploader.jobs.put(None)
            worker.join()
            age.stdout.close()
            age_code = age.wait()
            dump_code = dump.wait()
            stats_done.set()
        if uploader.error is not None:
            exc = uploader.error
            error = f"upload failed: {exc}" if isinstance(exc, TelegramError) else f"upload failed: {exc!r}"
        elif dump_code != 0:
            dump_err.seek(0)
            error = f"pg_dump exited {dump_code}: {dump_err.read().decode(errors='replace').strip()[-500:]}"
        elif age_code != 0:
            age_err.seek(0)
            error = f"age exited {age_code}: {age_err.read().decode(errors='replace').strip()[-500:]}"
        elif uploader.uploaded != chunks:
            error = f"{uploader.uploaded} of {chunks} chunks uploaded"

    if stats_thread is not None:
        stats_thread.join(timeout=STATS_TIMEOUT)  # figures may take longer than the dump itself
        if error is None and "error" in stats_holder:
            error = f"table statistics failed: {stats_holder['error']}"
        elif error is None and "stats" not in stats_holder:
            error = "table statistics did not finish in time"
    result.seconds = time.monotonic() - started_clock
    result.chunks, result.bytes = uploader.uploaded, uploader.total_bytes
    if error is None:
        try:
            backups.complete(conn, backup_id, chunks, uploader.total_bytes, owner, stats_holder.get("stats"))
            result.ok = True
            log(f"{target.key}: backup {backup_id} complete, {chunks} chunks, {uploader.total_bytes} bytes")
            return result
        except (RuntimeError, psycopg.Error) as exc:
            error = str(exc)
    result.error = error
    result.cleanup_error = delete_uploaded(client, conn, backup_id)
    backups.fail(conn, backup_id, error, result.cleanup_error)
    log(f"{target.key}: backup {backup_id} FAILED: {error}")
    return result


def sweep_stale(conn: psycopg.Connection, client: TelegramClient) -> list[int]:
    """Backups left 'running' by a run that died: their messages deleted, marked failed.
    Only called while holding the backup lock, so no other run is in progress."""
    swept = []
    for backup_id in backups.running_ids(conn):
        cleanup = delete_uploaded(client, conn, backup_id)
        backups.fail(conn, backup_id, "interrupted: the run that made it ended before completing", cleanup)
        swept.append(backup_id)
    # Failed backups whose messages could not all be deleted earlier: try again.
    for backup_id in backups.failed_with_live_chunks(conn):
        backups.set_cleanup_error(conn, backup_id, delete_uploaded(client, conn, backup_id))
    return swept


class BackupLock:
    """A session advisory lock on the control connection: one backup run at a time."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> BackupLock:
        if not try_backup_lock(self.conn):
            raise BackupError("another backup run is in progress")
        return self

    def __exit__(self, *exc: object) -> None:
        release_backup_lock(self.conn)


def run_backups(
    settings: BackupSettings,
    conn: psycopg.Connection,
    client: TelegramClient,
    targets: list[Target],
    kind: str = "scheduled",
    with_stats: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> list[BackupResult]:
    results = []
    with BackupLock(conn):
        sweep_stale(conn, client)
        for target in targets:
            if target.key == CONTROL_KEY:
                # The master key first, so this run's dump of the control database records it.
                key_result = backup_master_key(settings, conn, client, kind, log)
                if key_result is not None:
                    results.append(key_result)
                manifests_result = backup_manifests(settings, conn, client, kind, log)
                if manifests_result is not None:
                    results.append(manifests_result)
            results.append(backup_target(settings, conn, client, target, kind, with_stats, log))
    return results
