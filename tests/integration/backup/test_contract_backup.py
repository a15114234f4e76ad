"""Backups end to end: real pg_dump, age and pg_restore against the throwaway PostgreSQL, uploads to the
local Telegram Bot API contract stand-in (hence `test_contract_*`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from nextmavens.backup.pipeline import Target, backup_target, run_backups
from nextmavens.backup.restore import (
    ChecksumError,
    RestoreError,
    WrongKeyError,
    choose_backup,
    decrypt_into,
    restore_backup,
)
from nextmavens.backup.retention import apply_retention
from nextmavens.backup.stats import table_stats
from nextmavens.backup.verify import drill
from nextmavens.control.store import backups
from tests.integration.backup.conftest import make_key


def stats_of(pg, database: str) -> dict:
    with psycopg.connect(pg.dsn_for(database)) as conn:
        return table_stats(conn)


def db_exists(pg, name: str) -> bool:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_contract_round_trip_backup_drop_restore(pg, settings, control, client, standin, project_db, age_key):
    before = stats_of(pg, project_db)
    assert len(before) == 12 and all(v["rows"] == 60 for v in before.values())
    target = Target(key=f"acme/{project_db}", database=project_db)
    result = backup_target(settings, control, client, target)
    assert result.ok, result.error
    assert result.chunks > 3  # several chunks at the test's 256 KiB chunk size
    # Every stored chunk is below the chunk size and the 20 MB download limit; sha256 recorded for each.
    chunks = backups.chunks(control, result.backup_id)
    assert [c.seq for c in chunks] == list(range(result.chunks))
    assert all(c.size <= settings.chunk_bytes and len(c.sha256) == 64 for c in chunks)
    # Nothing readable was uploaded: every chunk is age ciphertext (the first starts with age's header).
    first = standin.state.file_path(chunks[0].file_id).read_bytes()
    assert first.startswith(b"age-encryption.org/v1")
    assert b"PGDMP" not in b"".join(standin.state.file_path(c.file_id).read_bytes() for c in chunks)

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(project_db)))
    record = choose_backup(control, target.key, None)
    restore_backup(settings, control, client, record, age_key[0], project_db)
    assert stats_of(pg, project_db) == before


def test_contract_upload_failure_mid_backup_is_retried(settings, control, client, standin, project_db):
    standin.state.fail_next_uploads = 2  # two 500s in a row, mid-stream
    standin.state.fail_status = 500
    result = backup_target(settings, control, client, Target(key=f"acme/{project_db}", database=project_db))
    assert result.ok, result.error
    assert standin.state.calls.count("sendDocument") == result.chunks + 2
    assert backups.get(control, result.backup_id).status == "complete"


def test_contract_rate_limit_429_is_retried(settings, control, client, standin, project_db):
    standin.state.fail_next_uploads = 1
    standin.state.fail_status = 429
    result = backup_target(settings, control, client, Target(key=f"acme/{project_db}", database=project_db))
    assert result.ok, result.error


def test_contract_backup_interrupted_for_good_is_never_listed_complete(settings, control, client, standin, project_db):
    key = f"acme/{project_db}"
    standin.state.fail_uploads_after = 3  # three chunks land, then the API fails for good
    result = backup_target(settings, control, client, Target(key=key, database=project_db))
    assert not result.ok
    assert "upload failed" in (result.error or "")
    record = backups.get(control, result.backup_id)
    assert record is not None and record.status == "failed"
    assert backups.latest_complete(control, key) is None
    assert [r.status for r in backups.listing(control, key)] == ["failed"]
    # Its uploaded messages were deleted from the channel, and the records say so.
    assert standin.state.live_documents() == []
    assert all(c.deleted for c in backups.chunks(control, result.backup_id))
    with pytest.raises(RestoreError):
        choose_backup(control, key, result.backup_id)


def test_contract_run_left_running_is_swept_as_failed(settings, control, client, standin, project_db):
    key = f"acme/{project_db}"
    # A run that died after uploading one chunk: its record still says 'running'.
    dead = backups.start(control, key, project_db, "scheduled", settings.recipient, 999999)
    document = client.send_document(b"x" * 10, "orphan.part0000")
    backups.add_chunk(control, dead, 0, document.message_id, document.file_id, "", 10, "0" * 64)
    results = run_backups(settings, control, client, [Target(key=key, database=project_db)])
    assert results[0].ok
    swept = backups.get(control, dead)
    assert swept is not None and swept.status == "failed" and "interrupted" in (swept.error or "")
    assert standin.state.messages[document.message_id].deleted


def test_contract_corrupted_chunk_is_caught_by_its_checksum(
    pg, settings, control, client, standin, project_db, age_key
):
    key = f"acme/{project_db}"
    result = backup_target(settings, control, client, Target(key=key, database=project_db))
    assert result.ok
    chunk = backups.chunks(control, result.backup_id)[1]
    standin.state.corrupt(chunk.file_id)
    record = choose_backup(control, key, None)
    into = project_db + "_corrupt"
    with pytest.raises(ChecksumError, match="part 1: checksum mismatch"):
        restore_backup(settings, control, client, record, age_key[0], into)
    assert not db_exists(pg, into)  # the partly restored database was dropped


def test_contract_restore_with_the_wrong_key_fails_clearly(pg, settings, control, client, project_db, tmp_path):
    key = f"acme/{project_db}"
    assert backup_target(settings, control, client, Target(key=key, database=project_db)).ok
    wrong, _ = make_key(tmp_path, "wrong.key")
    record = choose_backup(control, key, None)
    into = project_db + "_wrongkey"
    with pytest.raises(WrongKeyError, match="wrong key"):
        restore_backup(settings, control, client, record, wrong, into)
    assert not db_exists(pg, into)


def test_contract_wrong_key_caught_by_age_itself(pg, settings, control, client, project_db, tmp_path):
    """When the identity's public key cannot be derived up front, age's own failure is still clear."""
    key = f"acme/{project_db}"
    result = backup_target(settings, control, client, Target(key=key, database=project_db))
    wrong, _ = make_key(tmp_path, "wrong2.key")
    parts = []
    for chunk in backups.chunks(control, result.backup_id):
        path = tmp_path / f"p{chunk.seq}"
        client.download(chunk.file_id, path)
        parts.append(path)
    with pytest.raises(WrongKeyError, match="does not match"):
        decrypt_into(settings, parts, wrong, "postgres")


def test_contract_retention_deletes_old_messages_and_keeps_newest(settings, control, client, standin, project_db):
    key = f"acme/{project_db}"
    target = Target(key=key, database=project_db, retention_days=7)
    ids = [backup_target(settings, control, client, target).backup_id for _ in range(3)]
    # Age the first two past retention; the newest stays recent.
    for backup_id, age in zip(ids, (20, 10, 0), strict=True):
        control.execute("UPDATE backups SET finished_at = now() - %s WHERE id = %s", (timedelta(days=age), backup_id))
    expired = apply_retention(control, client, [target])
    assert sorted(e.backup_id for e in expired) == ids[:2]
    statuses = {r.id: r.status for r in backups.listing(control, key)}
    assert statuses == {ids[0]: "expired", ids[1]: "expired", ids[2]: "complete"}
    live = {m.file_id for m in standin.state.live_documents()}
    assert live == {c.file_id for c in backups.chunks(control, ids[2])}

    # Even when every backup is past retention, the newest complete one is kept.
    control.execute("UPDATE backups SET finished_at = now() - interval '30 days' WHERE id = %s", (ids[2],))
    assert apply_retention(control, client, [target]) == []


def test_contract_retention_records_messages_telegram_refuses_to_delete(settings, control, client, standin, project_db):
    key = f"acme/{project_db}"
    target = Target(key=key, database=project_db, retention_days=1)
    old = backup_target(settings, control, client, target).backup_id
    backup_target(settings, control, client, target)
    control.execute("UPDATE backups SET finished_at = now() - interval '5 days' WHERE id = %s", (old,))
    standin.state.delete_age_limit = 48 * 3600
    standin.state.clock_offset = 5 * 24 * 3600  # the messages are now five days old
    [expired] = apply_retention(control, client, [target])
    assert expired.backup_id == old and "can't be deleted" in (expired.cleanup_error or "")
    assert backups.get(control, old).status == "expired"


def test_contract_verify_drill_compares_every_table_and_drops_scratch(pg, settings, control, client, project_db):
    key = f"acme/{project_db}"
    result = drill(settings, control, client, Target(key=key, database=project_db))
    assert result.ok, (result.error, result.mismatches)
    assert result.tables == 12
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        leftovers = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (project_db + "_verify%",)
        ).fetchall()
    assert leftovers == []
    row = control.execute(
        "SELECT ok, tables FROM backup_verifications WHERE backup_id = %s", (result.backup_id,)
    ).fetchone()
    assert row == (True, 12)
    # The drill's backup is a real, good backup, restorable with the operator's key.
    record = backups.get(control, result.backup_id)
    assert record is not None and record.status == "complete" and record.recipient == settings.recipient


def test_contract_verify_detects_a_difference(pg, settings, control, client, project_db):
    """A backup whose recorded figures disagree with what restores is reported, table by table."""
    from nextmavens.backup.verify import EphemeralIdentity, restore_drill

    key = f"acme/{project_db}"
    with EphemeralIdentity(settings.work_dir) as (identity, public):
        made = backup_target(
            settings,
            control,
            client,
            Target(key=key, database=project_db),
            with_stats=True,
            drill_recipient=public,
        )
        stats = backups.get(control, made.backup_id).table_stats
        name = sorted(stats)[0]
        stats[name]["rows"] += 1
        control.execute(
            "UPDATE backups SET table_stats = %s WHERE id = %s",
            (psycopg.types.json.Jsonb(stats), made.backup_id),
        )
        result = restore_drill(settings, control, client, made.backup_id, identity)
    assert not result.ok
    assert [m["table"] for m in result.mismatches] == [name]


def test_contract_dump_snapshot_matches_figures_under_concurrent_writes(pg, settings, control, client, project_db):
    """Figures and dump share one exported snapshot: writes during the backup do not break the drill."""
    import threading

    stop = threading.Event()

    def writer() -> None:
        with psycopg.connect(pg.dsn_for(project_db), autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO public.t000_users (name) VALUES ('concurrent')")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = drill(settings, control, client, Target(key=f"acme/{project_db}", database=project_db))
    finally:
        stop.set()
        thread.join()
    assert result.ok, (result.error, result.mismatches)


def test_contract_control_database_is_backed_up_too(pg, settings, control, client, age_key):
    from nextmavens.backup.targets import all_targets

    targets = all_targets(None)
    assert [t.key for t in targets] == ["_platform/control"] and targets[0].database == "nextmavens"
    result = backup_target(settings, control, client, targets[0])
    assert result.ok, result.error
    # And restores: all of it is the platform's own (one superuser run of definitions, one of data).
    into = f"nextmavens_copy_{result.backup_id}"
    restore_backup(settings, control, client, backups.get(control, result.backup_id), age_key[0], into)
    try:
        restored, live = stats_of(pg, into), stats_of(pg, "nextmavens")
        assert set(restored) == set(live) and restored["public.schema_migrations"] == live["public.schema_migrations"]
    finally:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(into)))


def test_contract_missing_database_is_a_failed_backup(settings, control, client):
    result = backup_target(settings, control, client, Target(key="acme/ghost", database="no_such_db"))
    assert not result.ok and "does not exist" in (result.error or "")


def test_contract_token_never_in_records_or_errors(settings, control, client, standin, project_db):
    standin.state.fail_uploads_after = 0
    result = backup_target(settings, control, client, Target(key=f"acme/{project_db}", database=project_db))
    token = standin.state.token
    assert not result.ok and token not in (result.error or "")
    dumped = control.execute("SELECT string_agg(b::text, ' ') FROM backups b").fetchone()
    assert token not in (dumped[0] or "")


def test_chunks_stay_below_telegram_download_limit_by_default() -> None:
    from nextmavens.backup.settings import DEFAULT_CHUNK_BYTES
    from nextmavens.backup.telegram import DOWNLOAD_LIMIT_BYTES

    assert DEFAULT_CHUNK_BYTES < 20_000_000 <= DOWNLOAD_LIMIT_BYTES


def test_project_db_fixture_paths(tmp_path: Path) -> None:
    assert tmp_path.exists()


def test_one_backup_run_at_a_time(pg, settings, control, client, project_db) -> None:
    """A second run (or a drill) while one holds the lock is refused, so its sweep never takes a live backup."""
    from nextmavens.backup.pipeline import BackupError, BackupLock
    from nextmavens.control.db import connect_control

    other = connect_control(pg.dsn)
    try:
        with BackupLock(control):
            with pytest.raises(BackupError, match="in progress"):
                run_backups(settings, other, client, [Target(key=f"acme/{project_db}", database=project_db)])
        with BackupLock(other):
            pass  # released: the next run proceeds
    finally:
        other.close()


def test_contract_missing_age_is_a_failed_backup_not_a_crash(settings, control, client, project_db) -> None:
    import dataclasses

    broken = dataclasses.replace(settings, age_bin="/nonexistent/age")
    result = backup_target(broken, control, client, Target(key=f"acme/{project_db}", database=project_db))
    assert not result.ok and "not installed: /nonexistent/age" in (result.error or "")
    assert backups.get(control, result.backup_id).status == "failed"


def test_table_figures_hash_rows_by_type_with_a_text_fallback(pg, project_db) -> None:
    figures = stats_of(pg, project_db)
    methods = {name.rsplit("_", 1)[1]: f["method"] for name, f in figures.items()}
    assert methods["events"] == "text"  # has a json column: no hash function for json
    assert methods["users"] == "record"
    # A column named like the row alias does not confuse the whole-row reference.
    with psycopg.connect(pg.dsn_for(project_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.odd (r int, t text)")
        conn.execute("INSERT INTO public.odd VALUES (1, 'a'), (2, 'b')")
        from nextmavens.backup.stats import table_stats_parallel

        parallel = table_stats_parallel(pg.dsn_for(project_db))
        single = table_stats(conn)
    assert parallel == single and single["public.odd"]["rows"] == 2
