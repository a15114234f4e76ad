"""TLS is verified: a service whose certificate no trusted CA signs is refused with a message that names
NEXTMAVENS_CA_BUNDLE, and the same service is reached once that bundle holds its CA."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nextmavens.remote.api import ApiClient, RemoteError
from tests.support.localnginx import self_signed

PORT = 25423  # this test's loopback server


class Me(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
        body = json.dumps({"member": "dev@acme.test"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """https://localhost:PORT with a self-signed certificate; yields that certificate's file."""
    folder = tmp_path_factory.mktemp("tls")
    self_signed(folder, "localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", PORT), Me)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "fullchain.pem", folder / "privkey.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder / "fullchain.pem"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_untrusted_certificate_is_refused_and_a_ca_bundle_trusts_it(
    service: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"https://localhost:{PORT}"
    monkeypatch.delenv("NEXTMAVENS_CA_BUNDLE", raising=False)
    with pytest.raises(RemoteError, match="NEXTMAVENS_CA_BUNDLE") as caught:
        ApiClient(url, "nmp_x").get("/v1/me")
    assert caught.value.code == "tls" and "not trusted" in caught.value.message
    monkeypatch.setenv("NEXTMAVENS_CA_BUNDLE", str(service))
    assert ApiClient(url, "nmp_x").get("/v1/me") == {"member": "dev@acme.test"}
    monkeypatch.setenv("NEXTMAVENS_CA_BUNDLE", str(service.parent / "missing.pem"))
    with pytest.raises(RemoteError, match="cannot read it as a PEM bundle"):
        ApiClient(url, "nmp_x").get("/v1/me")
