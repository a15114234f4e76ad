"""A local contract stand-in for the Telegram Bot API, for tests and benchmarks only (never production).

It serves the four methods backups use, with the shapes the public Bot API documents, and enforces its
limits: uploads (the whole multipart request) up to 50 MB, downloads through getFile up to 20 MB, the
multipart fields sendDocument requires (chat_id, document with a filename), the token and the chat.
Failures on demand: the next N uploads fail with a status, every upload after the Nth fails for good, a
stored file is corrupted, messages older than a limit cannot be deleted (the public API's 48 hours).
Files are kept on disk, so a 1 GB benchmark does not live in memory. Loopback only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.standins.loopback import LoopbackStandin

UPLOAD_LIMIT = 50 * 1024 * 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024


@dataclass
class StoredMessage:
    message_id: int
    chat_id: str
    date: float
    file_id: str | None = None
    file_name: str | None = None
    size: int = 0
    text: str | None = None
    caption: str = ""
    deleted: bool = False


@dataclass
class StandinState:
    token: str
    chat_id: str
    files_dir: Path
    fail_next_uploads: int = 0
    fail_status: int = 500
    fail_uploads_after: int | None = None  # uploads accepted before every later one fails
    delete_age_limit: float | None = None  # seconds; None: any message can be deleted
    clock_offset: float = 0.0
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    files: dict[str, StoredMessage] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    uploads_accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return time.time() + self.clock_offset

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / f"{file_id}.bin"

    def corrupt(self, file_id: str, offset: int = 100) -> None:
        path = self.file_path(file_id)
        with path.open("r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0xFF]))

    def live_documents(self) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.file_id and not m.deleted]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, and never log the token
        return

    # -- replies -------------------------------------------------------------------------------------
    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ok(self, result: Any) -> None:
        self._json(200, {"ok": True, "result": result})

    def _fail(self, status: int, description: str, **extra: Any) -> None:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        payload.update(extra)
        self._json(status, payload)

    # -- routing -------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        state = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        prefix = f"/file/bot{state.token}/"
        if parts.path.startswith(prefix):
            file_path = urllib.parse.unquote(parts.path[len(prefix) :])
            file_id = file_path.removeprefix("documents/").removesuffix(".bin")
            stored = state.files.get(file_id)
            if stored is None or stored.deleted:
                return self._fail(404, "Not Found")
            path = state.file_path(file_id)
            size = path.stat().st_size
            if size > DOWNLOAD_LIMIT:
                return self._fail(400, "Bad Request: file is too big")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with path.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    self.wfile.write(block)
            return None
        return self._method(dict(urllib.parse.parse_qsl(parts.query)))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > UPLOAD_LIMIT:
            self.close_connection = True
            return self._fail(413, "Request Entity Too Large")
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            body = self.rfile.read(length)
            try:
                fields, files = _parse_multipart(ctype, body)
            except ValueError as exc:
                return self._fail(400, f"Bad Request: {exc}")
            return self._method(fields, files)
        body = self.rfile.read(length)
        if ctype.startswith("application/json"):
            return self._method({k: str(v) for k, v in json.loads(body or b"{}").items()})
        return self._method(dict(urllib.parse.parse_qsl(body.decode())))

    def _method(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None) -> None:
        state = self.server.state
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/bot") or "/" not in path[4:]:
            return self._fail(404, "Not Found")
        token, method = path[4:].split("/", 1)
        if token != state.token:
            return self._fail(401, "Unauthorized")
        with state.lock:
            state.calls.append(method)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._fail(404, "Not Found")
        handler(fields, files or {})
        return None

    # -- methods -------------------------------------------------------------------------------------
    def _chat_ok(self, fields: dict[str, str]) -> bool:
        if fields.get("chat_id") != self.server.state.chat_id:
            self._fail(400, "Bad Request: chat not found")
            return False
        return True

    def _api_getMe(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> None:  # noqa: N802
        self._ok({"id": 1, "is_bot": True, "first_name": "standin", "username": "standin_bot"})

    def _api_sendDocument(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> None:  # noqa: N802
        state = self.server.state
        if not self._chat_ok(fields):
            return
        if "document" not in files:
            return self._fail(400, "Bad Request: there is no document in the request")
        filename, data = files["document"]
        if not filename:
            return self._fail(400, "Bad Request: file must have a name")
        if len(fields.get("caption", "")) > 1024:
            return self._fail(400, "Bad Request: message caption is too long")
        with state.lock:
            if state.fail_next_uploads > 0:
                state.fail_next_uploads -= 1
                return self._fail(state.fail_status, "Internal Server Error", parameters={"retry_after": 0})
            if state.fail_uploads_after is not None and state.uploads_accepted >= state.fail_uploads_after:
                return self._fail(502, "Bad Gateway")
            state.uploads_accepted += 1
            number = next(state.ids)
        file_id = f"BQAC{number:08d}"
        state.file_path(file_id).write_bytes(data)
        message = StoredMessage(
            message_id=number,
            chat_id=fields["chat_id"],
            date=state.now(),
            file_id=file_id,
            file_name=filename,
            size=len(data),
            caption=fields.get("caption", ""),
        )
        with state.lock:
            state.messages[number] = message
            state.files[file_id] = message
        self._ok(
            {
                "message_id": number,
                "date": int(message.date),
                "chat": {
                    "id": int(fields["chat_id"]) if fields["chat_id"].lstrip("-").isdigit() else 0,
                    "type": "channel",
                },
                "caption": message.caption,
                "document": {
                    "file_name": filename,
                    "mime_type": "application/octet-stream",
                    "file_id": file_id,
                    "file_unique_id": f"AgAD{number:08d}",
                    "file_size": len(data),
                },
            }
        )

    def _api_sendMessage(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> None:  # noqa: N802
        state = self.server.state
        if not self._chat_ok(fields):
            return
        text = fields.get("text", "")
        if not text or len(text) > 4096:
            return self._fail(400, "Bad Request: message text is empty or too long")
        with state.lock:
            number = next(state.ids)
            state.messages[number] = StoredMessage(number, fields["chat_id"], state.now(), text=text)
        self._ok({"message_id": number, "date": int(state.now()), "text": text})

    def _api_getFile(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> None:  # noqa: N802
        state = self.server.state
        stored = state.files.get(fields.get("file_id", ""))
        if stored is None or stored.deleted:
            return self._fail(400, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            return self._fail(400, "Bad Request: file is too big")
        self._ok(
            {
                "file_id": stored.file_id,
                "file_unique_id": f"AgAD{stored.message_id:08d}",
                "file_size": stored.size,
                "file_path": f"documents/{stored.file_id}.bin",
            }
        )

    def _api_deleteMessage(self, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> None:  # noqa: N802
        state = self.server.state
        if not self._chat_ok(fields):
            return
        try:
            stored = state.messages.get(int(fields.get("message_id", "")))
        except ValueError:
            stored = None
        if stored is None or stored.deleted:
            return self._fail(400, "Bad Request: message to delete not found")
        if state.delete_age_limit is not None and state.now() - stored.date > state.delete_age_limit:
            return self._fail(400, "Bad Request: message can't be deleted")
        stored.deleted = True
        if stored.file_id:
            state.file_path(stored.file_id).unlink(missing_ok=True)
        self._ok(True)


def _parse_multipart(ctype: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    params = dict(p.strip().split("=", 1) for p in ctype.split(";")[1:] if "=" in p)
    boundary = params.get("boundary", "").strip('"')
    if not boundary:
        raise ValueError("multipart without boundary")
    delimiter = b"--" + boundary.encode()
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if not body.rstrip().endswith(delimiter + b"--"):
        raise ValueError("multipart body is truncated")
    for part in body.split(delimiter)[1:-1]:
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = part.partition(b"\r\n\r\n")
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disposition = line.split(":", 1)[1]
        attrs = {}
        for item in disposition.split(";")[1:]:
            if "=" in item:
                key, value = item.strip().split("=", 1)
                attrs[key] = value.strip('"')
        name = attrs.get("name")
        if not name:
            raise ValueError("multipart part without a name")
        if "filename" in attrs:
            files[name] = (attrs["filename"], content)
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: StandinState


class TelegramStandin(LoopbackStandin):
    """Start with `with TelegramStandin(...) as api:`; `api.base_url` is what the client gets."""

    def __init__(self, files_dir: Path, token: str = "123456:standin-token", chat_id: str = "-1001234567890"):
        files_dir.mkdir(parents=True, exist_ok=True)
        self.state = StandinState(token=token, chat_id=chat_id, files_dir=files_dir)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self.state
        super().__init__(server)


def main() -> None:
    """Run as its own process (the benchmark does, so its memory is not counted as the pipeline's)."""
    parser = argparse.ArgumentParser(description="Telegram Bot API contract stand-in (loopback only)")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--chat-id", required=True)
    parser.add_argument("--port-file", required=True, type=Path)
    args = parser.parse_args()
    standin = TelegramStandin(args.dir, args.token_file.read_text().strip(), args.chat_id)
    args.port_file.write_text(standin.base_url + "\n")
    standin._server.serve_forever()


if __name__ == "__main__":
    main()
