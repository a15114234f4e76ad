"""One forwarded post against real loopback servers: it connects to the address that was checked (the name is not
looked up again), names the URL's host in the Host header and as the TLS server name, and follows no redirect."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nextmavens.whatsapp import delivery
from nextmavens.whatsapp.delivery import Poster
from tests.support.localnginx import self_signed

PORTS = range(25600, 25700)  # this test's own port range
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path, Host header)
        self.server_names: list[str | None] = []
        self.status = 204


@contextmanager
def serving(seen: Seen, tls: ssl.SSLContext | None) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.requests.append((self.path, self.headers.get("Host")))
            self.send_response(seen.status)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
            pass

    server = None
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            continue
    assert server is not None, "no free port in 25600-25699"
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name resolves to 127.0.0.1, once: a second lookup of the same name fails the test."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[Any]:
        assert host not in asked, f"{host} was looked up twice"
        asked.append(host)
        return [LOOPBACK]

    monkeypatch.setattr(delivery, "resolve", resolve)
    return asked


def test_https_goes_to_the_checked_address_with_the_urls_name_as_host_and_sni(
    tmp_path: Path, pinned: list[str]
) -> None:
    self_signed(tmp_path, "app.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(tmp_path / "fullchain.pem", tmp_path / "privkey.pem")
    seen = Seen()
    server_tls.sni_callback = lambda sock, name, context: seen.server_names.append(name)  # type: ignore[assignment]
    client_tls = ssl.create_default_context(cafile=str(tmp_path / "fullchain.pem"))
    with serving(seen, server_tls) as port:
        outcome = Poster(allow_private=True, tls=client_tls).post(f"https://app.test:{port}/in?k=1", b"{}", {})
        assert outcome.delivered, outcome.detail
        assert seen.requests == [("/in?k=1", f"app.test:{port}")]
        assert seen.server_names == ["app.test"]
        assert pinned == ["app.test"]
        # the certificate is checked against the URL's name, not the address connected to
        wrong = Poster(allow_private=True, tls=client_tls).post(f"https://other.test:{port}/in", b"{}", {})
        assert not wrong.delivered and "connection failed" in wrong.detail


def test_a_redirect_is_not_followed(pinned: list[str]) -> None:
    seen = Seen()
    seen.status = 302
    with serving(seen, None) as port:
        outcome = Poster(allow_private=True).post(f"http://app.invalid:{port}/hook", b"{}", {})
        assert (outcome.delivered, outcome.detail) == (False, f"http://app.invalid:{port}: HTTP 302")
        assert seen.requests == [("/hook", f"app.invalid:{port}")]


def test_a_refused_name_is_never_connected_to() -> None:
    seen = Seen()
    with serving(seen, None) as port:
        outcome = Poster().post(f"http://localhost:{port}/hook", b"{}", {})
        assert not outcome.delivered and "is loopback" in outcome.detail
        assert seen.requests == []


def test_a_closed_poster_posts_nothing() -> None:
    seen = Seen()
    poster = Poster(allow_private=True)
    poster.close()
    with serving(seen, None) as port:
        outcome = poster.post(f"http://127.0.0.1:{port}/hook", b"{}", {})
        assert outcome.stopped and seen.requests == []
