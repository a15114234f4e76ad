"""Real local processes for the edge integration tests: nginx under a temp prefix, stand-in upstreams.

Everything listens on 127.0.0.1 high ports; processes are ended by the pid the tests started.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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


class _Echo(BaseHTTPRequestHandler):
    name = "upstream"

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"upstream": self.name, "host": self.headers.get("Host"), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def echo_server(name: str):
    handler = type(f"Echo_{name}", (_Echo,), {"name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


MAIN_CONF = """\
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
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
    port: int, host: str, path: str = "/", timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
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
