"""A throwaway PostgreSQL server in a folder: initdb + pg_ctl on a free loopback port.

Used by the test suite and by `nextmavens localdb up` (the local stand-in for the host's Postgres until
the sandbox host runs). initdb refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"
SERVER_USER = "postgres"


def find_bin_dir() -> Path:
    configured = os.environ.get("NEXTMAVENS_PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise FileNotFoundError("no PostgreSQL server binaries found; install postgresql (15 or newer)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPostgres:
    base: Path
    port: int = 0
    fast: bool = False  # fsync off: for tests and benchmarks only, never for data you keep

    def __post_init__(self) -> None:
        self.base = self.base.resolve()  # the server runs from its data folder: relative paths would break

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def password_file(self) -> Path:
        return self.base / "superuser-password"

    @property
    def bin_dir(self) -> Path:
        return find_bin_dir()

    @property
    def dsn(self) -> str:
        return make_conninfo(
            "", host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password, dbname="postgres"
        )

    def dsn_for(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        return make_conninfo(
            "",
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            dbname=dbname,
        )

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """As root the server runs as another user, who must be able to pass through every parent folder."""
        if os.geteuid() != 0:
            return
        for parent in self.base.resolve().parents:
            if not parent.stat().st_mode & 0o001:
                raise PermissionError(
                    f"{parent} is not searchable by the {SERVER_USER} user; choose a folder elsewhere "
                    f"or run: chmod o+x {parent}"
                )

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self.base.chmod(0o711)  # the server user must reach its data folder; nobody may list it
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o700)
            self._chown(folder)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        pwfile = self.base / "run" / "initdb-pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        if not self.initialized():
            self.init()
        if not self.port:
            self.port = free_port()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c wal_level=logical",
            "-c max_connections=300",
            "-c max_replication_slots=20",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        log = self.base / "server.log"
        log.touch()
        self._chown(log)
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(options),
                "start",
            ]
        )
        (self.base / "port").write_text(f"{self.port}\n")

    def running(self) -> bool:
        result = subprocess.run(
            self._as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            capture_output=True,
            text=True,
        )
        return result.returncode == 0

    def stop(self) -> None:
        if self.initialized() and self.running():
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def clone(self, base: Path, fast: bool = True) -> LocalPostgres:
        """A stopped copy of this (stopped) server's data: a fresh cluster without another initdb."""
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o711)
        subprocess.run(["cp", "-a", f"{self.base}/.", str(base)], check=True)
        (base / "port").unlink(missing_ok=True)
        return LocalPostgres(base=base, fast=fast)

    @classmethod
    def existing(cls, base: Path) -> LocalPostgres:
        port_file = base / "port"
        port = int(port_file.read_text()) if port_file.exists() else 0
        return cls(base=base, port=port)
