"""Real local processes for the edge integration tests: nginx under a temp prefix, stand-in upstreams.

Everything listens on 127.0.0.1 high ports; processes are ended by the pid the tests started.
"""

from __future__ import annotations

import datetime
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.loopback import QuietHandler, serving

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if path is None:
        # In CI a missing tool is a broken install step, never a reason to skip the real check.
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; scripts/bootstrap must install it")
        pytest.skip(f"{binary} is not installed (apt-get install {binary})")
    return path


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class _Echo(QuietHandler):
    name = "upstream"

    def do_GET(self) -> None:  # noqa: N802
        self.reply_json(200, {"upstream": self.name, "host": self.headers.get("Host"), "path": self.path})


def echo_server(name: str) -> AbstractContextManager[int]:
    """An upstream that answers every GET with its name, the Host it was asked for and the path; yields the port."""
    return serving(type(f"Echo_{name}", (_Echo,), {"name": name}))


MAIN_CONF = """\
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
# As production's nginx_worker_connections.
worker_rlimit_nofile 4096;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/sites/*.conf;
}}
"""


def wait_settled(prefix: Path, timeout: float = 20) -> None:
    """Until the nginx of `prefix` has its one worker only (bounded). `nginx -s reload` returns once it has signalled:
    the workers of the config before keep accepting connections until they see the signal (seen: for over a second on
    a busy machine), so a load started at once can reach a config that had no server for its name yet."""
    master = int((prefix / "nginx.pid").read_text().strip())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [stat for stat in Path("/proc").glob("[0-9]*/stat") if _parent_of(stat) == master]
        if len(workers) <= 1:  # MAIN_CONF: worker_processes 1
            return
        time.sleep(0.05)
    raise AssertionError(f"nginx {master} still has the workers of an earlier config after {timeout:.0f} s")


def _parent_of(stat: Path) -> int | None:
    """The parent pid in /proc/<pid>/stat (None when the process has gone meanwhile)."""
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class LocalNginx:
    """An nginx of our own: `-p prefix -c prefix/nginx.conf`; never the system service."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        (prefix / "sites").mkdir(parents=True, exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(MAIN_CONF.format(prefix=prefix))
        self.site = prefix / "sites" / "nextmavens-edge.conf"
        self.pid: int | None = None

    def argv(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf), *extra]

    @property
    def test_cmd(self) -> list[str]:
        return self.argv("-t", "-q")

    @property
    def reload_cmd(self) -> list[str]:
        return self.argv("-s", "reload")

    def start(self) -> None:
        subprocess.run(self.argv(), check=True, capture_output=True, timeout=30)
        pid_file = self.prefix / "nginx.pid"
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pid = int(pid_file.read_text().strip())

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None


def http_get(
    port: int,
    host: str,
    path: str = "/",
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    tls: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """GET from 127.0.0.1:port as `host` (its SNI too with `tls`, certificates not checked)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        conn.sock = context.wrap_socket(raw, server_hostname=host)  # SNI: the name asked for, not the address
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def closed_without_answer(port: int, host: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return s.recv(1024) == b""


def get_after_reload(
    port: int,
    host: str,
    path: str = "/",
    want: int = 200,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
):
    """nginx reload is a signal: old workers may answer for a moment. Poll (bounded) for `want`."""
    deadline = time.monotonic() + timeout
    last: tuple[int, dict[str, str], bytes] | None = None
    while time.monotonic() < deadline:
        try:
            last = http_get(port, host, path, headers=headers)
            if last[0] == want:
                return last
        except (ConnectionError, http.client.HTTPException, OSError):
            pass
        time.sleep(0.1)
    return last


def self_signed(directory: Path, name: str) -> None:
    """fullchain.pem and privkey.pem of a self-signed certificate for `name`, laid out as certbot's live/<name>."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
