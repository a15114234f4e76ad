"""ApiClient keeps its connection between requests (an MCP server's tool calls), against a real loopback HTTP/1.1
server: one connection for many requests; a GET whose kept connection the server closed is sent again once; a
POST never is (it may have arrived: the caller decides); an idle connection is not reused after KEEP_IDLE_S."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nextmavens.remote import api
from nextmavens.remote.api import ApiClient, RemoteError


class Recorder:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.close_after_next = False


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    record = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            record.connections += 1

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            record.requests.append(f"{self.command} {self.path}")
            body = json.dumps({"n": len(record.requests)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if record.close_after_next:
                # the answer says keep-alive, then the server drops the connection (as an idle timeout does)
                record.close_after_next = False
                self.close_connection = True

        do_GET = answer  # noqa: N815
        do_POST = answer  # noqa: N815

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_requests_share_one_connection(server: tuple[str, Recorder]) -> None:
    url, record = server
    client = ApiClient(url, "nmp_token")
    for _ in range(5):
        client.get("/v1/me")
    client.post("/v1/x", {"a": 1})
    assert record.connections == 1 and len(record.requests) == 6
    client.close()


def test_a_get_on_a_dropped_connection_is_sent_again_once(server: tuple[str, Recorder]) -> None:
    url, record = server
    client = ApiClient(url, "nmp_token")
    record.close_after_next = True
    client.get("/v1/me")
    assert client.get("/v1/me") == {"n": 2}
    assert record.connections == 2 and record.requests == ["GET /v1/me", "GET /v1/me"]


def test_a_post_on_a_dropped_connection_is_not_sent_again(server: tuple[str, Recorder]) -> None:
    url, record = server
    client = ApiClient(url, "nmp_token")
    record.close_after_next = True
    client.get("/v1/me")
    with pytest.raises(RemoteError) as failed:
        client.post("/v1/projects/a/b/sql", {"query": "SELECT 1"})
    assert failed.value.status == 0 and failed.value.code == "connection"
    assert record.requests == ["GET /v1/me"]  # the POST never ran twice (here: not at all)
    assert client.post("/v1/projects/a/b/sql", {"query": "SELECT 1"}) == {"n": 2}  # a new connection then


def test_an_idle_connection_is_not_reused(server: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    url, record = server
    client = ApiClient(url, "nmp_token")
    client.get("/v1/me")
    monkeypatch.setattr(api, "KEEP_IDLE_S", 0.0)
    client.get("/v1/me")
    assert record.connections == 2
