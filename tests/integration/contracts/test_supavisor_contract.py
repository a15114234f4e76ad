"""Supavisor (a stand-in in the sandbox) on the database side: the tenant it is given (clients/tenants.py)
authenticates clients with `auth_query = SELECT * FROM pgbouncer.get_auth($1)` run as the `pgbouncer` role
in the project's database. Debian's real pgbouncer does exactly that, so it stands in for Supavisor here:
a project's roles log in through it with their real passwords; a superuser and another project's role
cannot, even with their own correct passwords."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from devkit.localdb.server import SERVER_USER, free_port
from nextmavens.edge.clients.tenants import desired_supavisor_tenant
from nextmavens.naming import POOLER_ROLE
from tests.integration.contracts.projects import Applied, apply_two_projects
from tests.support.edgesamples import settings
from tests.support.engine import Stage
from tests.support.scratch import scratch_dir

READY_TIMEOUT_S = 15.0
# How pgbouncer 1.18 refuses a client: a failed SCRAM exchange, or a user the auth query knows nothing of.
WRONG_PASSWORD = "SASL authentication failed"
UNKNOWN_USER = "no such user"


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        pytest.fail("pgbouncer is not installed: Debian's pgbouncer package (scripts/bootstrap installs it)")
    return found


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pgbouncer exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"pgbouncer did not listen within {READY_TIMEOUT_S}s: {log.read_text(errors='replace')}")


def _write_private(path: Path, text: str) -> None:
    """0600 from the start (the auth file holds the pooler's password), owned by the user pgbouncer runs as."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def pooler(stage: Stage) -> Iterator[tuple[int, dict[str, Applied]]]:
    """pgbouncer as a child process on a free loopback port, configured as Supavisor's tenants are."""
    projects = apply_two_projects(stage)
    databases = []
    for project in projects.values():
        tenant = desired_supavisor_tenant(settings(), project.manifest)
        assert tenant["require_user"] is False  # Supavisor then authenticates clients with the auth query
        assert [u["db_user"] for u in tenant["users"]] == [POOLER_ROLE]
        assert tenant["auth_query"] == "SELECT * FROM pgbouncer.get_auth($1)"
        databases.append(
            f"{tenant['db_database']} = host=127.0.0.1 port={stage.server.port} dbname={tenant['db_database']}"
        )
    port = free_port()
    folder = scratch_dir("nextmavens-pgbouncer-")
    files = {name: folder / name for name in ("pgbouncer.ini", "userlist.txt", "pgbouncer.log")}
    proc = None
    try:
        _write_private(
            files["userlist.txt"], f"{_quote(POOLER_ROLE)} {_quote(stage.password('_cluster', POOLER_ROLE))}\n"
        )
        _write_private(files["pgbouncer.log"], "")
        lines = [
            "[databases]",
            *databases,
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            f"auth_file = {files['userlist.txt']}",
            f"auth_user = {POOLER_ROLE}",
            f"auth_query = {tenant['auth_query']}",
            "pool_mode = transaction",
            f"logfile = {files['pgbouncer.log']}",
        ]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root: it switches to this user
            lines.append(f"user = {SERVER_USER}")
        _write_private(files["pgbouncer.ini"], "\n".join(lines) + "\n")
        proc = subprocess.Popen(
            [_pgbouncer(), str(files["pgbouncer.ini"])], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        _wait_listening(proc, port, files["pgbouncer.log"])
        yield port, projects
    finally:
        if proc is not None:
            proc.terminate()  # by its own PID: it is our child
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for path in files.values():
            path.unlink(missing_ok=True)
        folder.rmdir()


def _through(port: int, database: str, user: str, password: str) -> tuple:
    conninfo = make_conninfo(
        "", host="127.0.0.1", port=port, dbname=database, user=user, password=password, connect_timeout=10
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row is not None
    return row


def test_contract_supavisor_auth_query_through_real_pgbouncer(
    stage: Stage, pooler: tuple[int, dict[str, Applied]]
) -> None:
    port, projects = pooler
    for ref, project in projects.items():
        # Every login role of the project, with the password the engine stored for it.
        for role in project.names.login_roles:
            assert _through(port, project.names.database, role, stage.password(ref, role)) == (role, ref)
        with pytest.raises(psycopg.OperationalError, match=WRONG_PASSWORD):
            _through(
                port, project.names.database, project.names.owner, "not-" + stage.password(ref, project.names.owner)
            )
    shop, desk = projects["shop"], projects["desk"]
    # A superuser, with its real password: get_auth has no secret for it, so pgbouncer refuses it.
    with pytest.raises(psycopg.OperationalError, match=UNKNOWN_USER):
        _through(port, shop.names.database, "postgres", stage.server.password)
    # desk's owner, with its real password, into shop's database: refused by pgbouncer's authentication
    # (get_auth serves only roles with CONNECT here), before the server's own CONNECT check.
    with pytest.raises(psycopg.OperationalError) as refused:
        _through(port, shop.names.database, desk.names.owner, stage.password("desk", desk.names.owner))
    assert UNKNOWN_USER in str(refused.value), refused.value
    assert "permission denied for database" not in str(refused.value)
    # The shared API roles are no door either (they have no password and no CONNECT).
    with pytest.raises(psycopg.OperationalError, match=UNKNOWN_USER):
        _through(port, shop.names.database, "service_role", "x")
