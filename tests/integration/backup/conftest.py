"""Fixtures for backup tests: an age key pair, the Telegram contract stand-in, settings pointing at both."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from devkit.localdb.datagen import generate
from devkit.localdb.server import LocalPostgres
from devkit.standins.telegram import TelegramStandin
from nextmavens.backup.settings import BackupSettings, TelegramSettings
from nextmavens.backup.telegram import RetryPolicy, TelegramClient
from nextmavens.control.db import connect_control

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, total_seconds=20, request_timeout=30)
_names = itertools.count(1)


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    path = folder / name
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True)
    return path, public.stdout.strip()


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_key(tmp_path_factory.mktemp("keys"), "operator.key")


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[TelegramStandin]:
    with TelegramStandin(tmp_path / "telegram") as api:
        yield api


def backup_settings(
    server: LocalPostgres, standin: TelegramStandin, recipient: str, folder: Path, chunk_bytes: int
) -> BackupSettings:
    """Backups of `server` to the stand-in, encrypted to `recipient`; the token file and work folder in `folder`."""
    token_file = folder / "token"
    token_file.write_text(standin.state.token + "\n")
    token_file.chmod(0o600)
    return BackupSettings(
        dsn=server.dsn,
        recipient=recipient,
        telegram=TelegramSettings(token_file, standin.state.chat_id, standin.base_url, FAST_RETRY),
        work_dir=folder / "work",
        chunk_bytes=chunk_bytes,
        pg_bin=server.bin_dir,
    )


@pytest.fixture
def settings(pg, standin: TelegramStandin, age_key: tuple[Path, str], tmp_path: Path) -> BackupSettings:
    return backup_settings(pg, standin, age_key[1], tmp_path, 256 * 1024)


@pytest.fixture
def client(settings: BackupSettings) -> TelegramClient:
    return settings.telegram.client()


@pytest.fixture
def control(pg) -> Iterator[psycopg.Connection]:
    conn = connect_control(pg.dsn)
    yield conn
    conn.close()


@pytest.fixture
def project_db(pg) -> Iterator[str]:
    """A project database with generated data; dropped (with anything restored from it) afterwards."""
    name = f"bk_proj_{next(_names)}_{id(object()) % 10000}"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(pg.dsn_for(name), autocommit=True) as conn:
        generate(conn, tables=12, rows=60, blob_kb=3, text_kb=6)
    yield name
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)).fetchall():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
