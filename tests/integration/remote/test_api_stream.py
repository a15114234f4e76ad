"""The client's line stream over a real socket: lines arrive as the server sends them (chunked, as the service's
server-sent events are), the end of the stream ends the loop, and silence longer than the read timeout is an
error that says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nextmavens.remote.api import ApiClient, RemoteError

PORT = 25421  # this test's loopback server


class Streamer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
        if self.headers.get("Authorization") != "Bearer nmp_stream":
            body = b'{"error": {"code": "unauthenticated", "message": "no"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pause = 2.0 if "silent" in self.path else 0.05
        for index in range(3):
            self._chunk(f"data: line {index}\n\n".encode())
            time.sleep(pause)
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", PORT), Streamer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{PORT}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_lines_arrive_in_order_and_the_stream_ends(server: str) -> None:
    lines = list(ApiClient(server, "nmp_stream").stream_lines("/logs", {"follow": "1"}, read_timeout=5))
    assert [line for line in lines if line] == ["data: line 0", "data: line 1", "data: line 2"]


def test_silence_beyond_the_read_timeout_is_an_error(server: str) -> None:
    stream = ApiClient(server, "nmp_stream").stream_lines("/silent", read_timeout=0.5)
    assert next(stream) == "data: line 0"
    with pytest.raises(RemoteError, match="no data from") as caught:
        list(stream)
    assert caught.value.code == "timeout"


def test_a_refused_stream_says_to_log_in_again(server: str) -> None:
    with pytest.raises(RemoteError, match="nextmavens login") as caught:
        next(ApiClient(server, "nmp_other").stream_lines("/logs"))
    assert caught.value.status == 401 and "nmp_other" not in str(caught.value)
