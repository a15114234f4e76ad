"""The commands our operations yield, run for real: secrets generated once into a 0600 file, and the
Postgres bootstrap SQL against a throwaway PostgreSQL (run twice: the second run changes nothing)."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from nextmavens.host.commands import PgDatabase, PgLoginRole, postgres_bootstrap_sql, secret_commands
from nextmavens.host.facts import SecretFileKeys

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available


def sh(command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True, **kwargs)


def keys_fact(path: Path) -> dict:
    fact = SecretFileKeys()
    return fact.process(sh(fact.command(path=str(path))).stdout.splitlines())


def test_secrets_are_generated_once_on_the_host(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "secrets.env"
    wanted = {"POSTGRES_PASSWORD": 32, "REALTIME_DB_ENC_KEY": 8}
    todo = secret_commands(str(path), keys_fact(path), wanted)
    for command in todo:
        result = sh(command)
        assert result.stdout == ""  # nothing printed, so nothing reaches pyinfra's output
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    values = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert re.fullmatch(r"[0-9a-f]{64}", values["POSTGRES_PASSWORD"])
    assert re.fullmatch(r"[0-9a-f]{16}", values["REALTIME_DB_ENC_KEY"])
    assert not any(values["POSTGRES_PASSWORD"] in command for command in todo)
    # Second run: converged, no command; a new key adds one line and keeps the others.
    assert secret_commands(str(path), keys_fact(path), wanted) == []
    for command in secret_commands(str(path), keys_fact(path), {**wanted, "REDIS_PASSWORD": 32}):
        sh(command)
    again = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert again["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"] and "REDIS_PASSWORD" in again
    path.chmod(0o644)
    assert secret_commands(str(path), keys_fact(path), wanted) == [f"chown root:root {path} && chmod 0600 {path}"]


def _pg_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


PG_BIN = _pg_bin()


@pytest.fixture
def postgres(tmp_path: Path):
    """A throwaway PostgreSQL on a free loopback port, run as the postgres user; stopped by pid."""
    if PG_BIN is None or int(PG_BIN.parent.name) < 15:
        pytest.skip("needs PostgreSQL >= 15 (psql \\getenv)")
    user = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="nextmavens-hosttest-pg-"))  # pytest's tmp dirs are 0700 root
    base.chmod(0o755)
    data = base / "pg"
    data.mkdir()
    os.chown(data, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def as_postgres(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, check=True)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    proc = subprocess.Popen(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(data), "-p", str(port)]).returncode == 0:
            break
        time.sleep(0.1)
    try:
        yield {"host": str(data), "port": str(port), "data": data}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _psql(pg: dict, *args: str, stdin: str = "", env: dict | None = None) -> str:
    psql = shutil.which("psql") or str(PG_BIN / "psql")
    return subprocess.run(
        [
            psql,
            "-h",
            pg["host"],
            "-p",
            pg["port"],
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qtA",
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout


def test_postgres_bootstrap_sql_is_idempotent(postgres: dict) -> None:
    db = PgDatabase("evolution", "evolution", "EVOLUTION_DB_PASSWORD", ("evolution_api",))
    sql = "\n".join(postgres_bootstrap_sql(db)) + "\n"
    env = {"EVOLUTION_DB_PASSWORD": "s3cr3t-'quoted\"-value"}
    for _ in range(2):  # the second run must succeed and change nothing
        _psql(
            postgres,
            "-v",
            "db=evolution",
            "-v",
            "owner=evolution",
            "-v",
            "schema_0=evolution_api",
            stdin=sql,
            env=env,
        )
    assert _psql(postgres, "-c", "SELECT datname FROM pg_database WHERE datname = 'evolution'").strip() == "evolution"
    assert _psql(postgres, "-c", "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'evolution'").strip() == "t"
    public = _psql(postgres, "-c", "SELECT has_database_privilege('public', 'evolution', 'CONNECT')").strip()
    assert public == "f"
    # A database without its own role (owner exists already).
    owner = _psql(
        postgres,
        "-d",
        "evolution",
        "-c",
        "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'evolution_api'",
    )
    assert owner.strip() == "evolution"
    # A database without its own role (owner exists already); a shared one keeps PUBLIC's CONNECT.
    no_role = "\n".join(postgres_bootstrap_sql(PgDatabase("nextmavens", "postgres"))) + "\n"
    _psql(postgres, "-v", "db=nextmavens", "-v", "owner=postgres", stdin=no_role)
    count = _psql(postgres, "-c", "SELECT count(*) FROM pg_database WHERE datname = 'nextmavens'")
    assert count.strip() == "1"
    shared = PgDatabase("postgres", "postgres", schemas=("_realtime",), private=False)
    for _ in range(2):
        _psql(
            postgres, "-v", "db=postgres", "-v", "owner=postgres", "-v", "schema_0=_realtime",
            stdin="\n".join(postgres_bootstrap_sql(shared)) + "\n",
        )  # fmt: skip
    public = _psql(postgres, "-c", "SELECT has_database_privilege('public', 'postgres', 'CONNECT')")
    assert public.strip() == "t"
    schema = _psql(postgres, "-c", "SELECT count(*) FROM pg_namespace WHERE nspname = '_realtime'")
    assert schema.strip() == "1"


def test_the_platform_login_role_sql_converges_whatever_the_role_was(postgres: dict) -> None:
    login = PgLoginRole("nextmavens_platform", "nextmavens", "PLATFORM_DB_PASSWORD")
    env = {"PLATFORM_DB_PASSWORD": "s3cr3t-'quoted\"-value"}
    _psql(postgres, "-c", "CREATE DATABASE nextmavens")
    assert _psql(postgres, *login.psql_variables(), stdin=login.STATE_SQL).strip() == ""  # missing: the operation runs
    sql = "\n".join(login.sql()) + "\n"
    # the migration's NOLOGIN role, a superuser, none: each converges (the second run of each changes nothing)
    for before in (
        "CREATE ROLE nextmavens_platform NOLOGIN",
        "ALTER ROLE nextmavens_platform SUPERUSER CREATEDB",
        "DROP OWNED BY nextmavens_platform; DROP ROLE nextmavens_platform",
    ):
        _psql(postgres, "-c", before)
        _psql(postgres, "-v", "role=nextmavens_platform", "-v", "db=nextmavens", stdin=sql, env=env)
        assert login.converged(_psql(postgres, *login.psql_variables(), stdin=login.STATE_SQL))
    verifier = _psql(postgres, "-c", "SELECT rolpassword FROM pg_authid WHERE rolname = 'nextmavens_platform'")
    assert verifier.startswith("SCRAM-SHA-256$") and "s3cr3t" not in verifier
