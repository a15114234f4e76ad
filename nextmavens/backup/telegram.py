"""A small Telegram Bot API client: sendDocument (multipart), getFile + download, deleteMessage, sendMessage.

Standard library only (http.client), so an upload streams from a buffer we already hold and a download
streams to a file. Every call is bounded: a number of attempts and a total time. The bot token is part of
every URL (`/bot<token>/method`); it never appears in a log line, an exception or a repr: use `masked()`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Limits of the public Bot API (DESIGN.md section 8): bots upload up to 50 MB and download up to 20 MB.
UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024
DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024
DEFAULT_API_BASE = "https://api.telegram.org"

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class TelegramError(Exception):
    """A failed Bot API call. Its message never contains the token."""

    def __init__(self, method: str, description: str, status: int | None = None, retryable: bool = False):
        self.method = method
        self.description = description
        self.status = status
        self.retryable = retryable
        super().__init__(f"telegram {method}: {description}" + (f" (HTTP {status})" if status else ""))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, bounded in attempts and in total seconds per call."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    total_seconds: float = 600.0
    request_timeout: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff; a 429's retry_after is honoured in full (the total deadline still bounds
        it), since retrying earlier only earns another 429."""
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if retry_after is not None:
            backoff = max(backoff, float(retry_after))
        return backoff


@dataclass(frozen=True)
class Document:
    message_id: int
    file_id: str
    file_unique_id: str
    size: int


@dataclass
class TelegramClient:
    token: str = field(repr=False)
    chat_id: str
    api_base: str = DEFAULT_API_BASE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = lambda message: None

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.api_base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("telegram API base must be an http(s) URL")
        if not self.token or any(c in self.token for c in "/?#% \n\r\t"):
            raise ValueError("telegram bot token is empty or malformed")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    # -- masking -------------------------------------------------------------------------------------
    def masked(self, text: str) -> str:
        """The text with the token replaced; for anything that might be logged."""
        return text.replace(self.token, "***") if self.token else text

    # -- public methods ------------------------------------------------------------------------------
    def send_document(self, data: bytes | bytearray | memoryview, filename: str, caption: str = "") -> Document:
        if len(data) > UPLOAD_LIMIT_BYTES:
            raise TelegramError("sendDocument", f"{filename} is {len(data)} bytes, over the upload limit")
        fields = {"chat_id": self.chat_id, "caption": caption, "disable_notification": "true"}
        result = self._call("sendDocument", multipart=(fields, "document", filename, data))
        document = result.get("document") or {}
        try:
            return Document(
                message_id=int(result["message_id"]),
                file_id=str(document["file_id"]),
                file_unique_id=str(document.get("file_unique_id", "")),
                size=int(document.get("file_size", len(data))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TelegramError("sendDocument", f"unexpected response shape ({exc.__class__.__name__})") from None

    def send_message(self, text: str) -> int:
        result = self._call("sendMessage", form={"chat_id": self.chat_id, "text": text[:4096]})
        return int(result["message_id"])

    def delete_message(self, message_id: int) -> None:
        self._call("deleteMessage", form={"chat_id": self.chat_id, "message_id": str(message_id)})

    def get_file_path(self, file_id: str) -> tuple[str, int]:
        result = self._call("getFile", form={"file_id": file_id})
        if "file_path" not in result:
            raise TelegramError("getFile", "no file_path in the response (file too big to download?)")
        return str(result["file_path"]), int(result.get("file_size", 0))

    def download(self, file_id: str, dest: Path, max_bytes: int = DOWNLOAD_LIMIT_BYTES) -> int:
        """getFile, then stream the file to `dest`. Returns its size."""
        return self._download(file_id, dest, max_bytes, hashed=False)[0]

    def download_sha256(self, file_id: str, dest: Path, max_bytes: int = DOWNLOAD_LIMIT_BYTES) -> tuple[int, str]:
        """Like download, hashing the bytes as they arrive (one pass): (size, sha256 hex)."""
        size, digest = self._download(file_id, dest, max_bytes, hashed=True)
        return size, digest or ""

    def _download(self, file_id: str, dest: Path, max_bytes: int, hashed: bool) -> tuple[int, str | None]:
        file_path, _ = self.get_file_path(file_id)
        quoted = urllib.parse.quote(file_path)
        path = f"{self._prefix}/file/bot{self.token}/{quoted}"

        def attempt() -> tuple[int, str | None]:
            conn = self._connection()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                if response.status != 200:
                    body = response.read(65536)
                    raise self._error_from("download", response.status, body)
                written = 0
                digest = hashlib.sha256() if hashed else None  # fresh per attempt
                # Each read is bounded by the socket timeout; the whole transfer by a deadline too, so a
                # server dripping bytes cannot hold a restore forever.
                deadline = self.clock() + 4 * self.retry.request_timeout
                with dest.open("wb") as handle:
                    while True:
                        block = response.read(1024 * 1024)
                        if not block:
                            break
                        written += len(block)
                        if written > max_bytes:
                            raise TelegramError("download", "file larger than the download limit")
                        if self.clock() > deadline:
                            raise TelegramError("download", "transfer too slow: deadline passed", None, True)
                        handle.write(block)
                        if digest is not None:
                            digest.update(block)
                return written, (digest.hexdigest() if digest is not None else None)
            finally:
                conn.close()

        return self._with_retries("download", attempt)

    # -- plumbing ------------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        timeout = self.retry.request_timeout
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _call(
        self,
        method: str,
        form: dict[str, str] | None = None,
        multipart: tuple[dict[str, str], str, str, bytes | bytearray | memoryview] | None = None,
    ) -> Any:
        path = f"{self._prefix}/bot{self.token}/{method}"

        def attempt() -> Any:
            conn = self._connection()
            try:
                if multipart is not None:
                    fields, file_field, filename, data = multipart
                    boundary = "nextmavens-" + secrets.token_hex(16)
                    head, tail = _multipart_envelope(boundary, fields, file_field, filename)
                    conn.putrequest("POST", path)
                    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
                    conn.putheader("Content-Length", str(len(head) + len(data) + len(tail)))
                    conn.endheaders()
                    conn.send(head)
                    view = memoryview(data)
                    for start in range(0, len(view), 1024 * 1024):
                        conn.send(view[start : start + 1024 * 1024])
                    conn.send(tail)
                else:
                    body = urllib.parse.urlencode(form or {}).encode()
                    conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                raw = response.read(1024 * 1024)
                if response.status != 200:
                    raise self._error_from(method, response.status, raw)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    raise TelegramError(method, "response is not JSON", response.status, True) from None
                if not payload.get("ok"):
                    raise self._error_from(method, response.status, raw)
                return payload.get("result")
            finally:
                conn.close()

        return self._with_retries(method, attempt)

    def _error_from(self, method: str, status: int, raw: bytes) -> TelegramError:
        description = f"HTTP {status}"
        retry_after: float | None = None
        try:
            payload = json.loads(raw)
            description = str(payload.get("description") or description)
            retry_after = (payload.get("parameters") or {}).get("retry_after")
        except ValueError:
            pass
        error = TelegramError(method, self.masked(description)[:300], status, status in RETRYABLE_STATUS)
        error.retry_after = retry_after  # type: ignore[attr-defined]
        return error

    def _with_retries(self, method: str, attempt: Callable[[], Any]) -> Any:
        deadline = self.clock() + self.retry.total_seconds
        last: TelegramError | None = None
        for number in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except TelegramError as exc:
                if not exc.retryable:
                    raise
                last = exc
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                # Connection-level failures: the message of these never holds the URL, but mask anyway.
                last = TelegramError(method, self.masked(f"{exc.__class__.__name__}: {exc}")[:300], None, True)
            if number == self.retry.attempts:
                break
            wait = self.retry.delay(number, getattr(last, "retry_after", None))
            if self.clock() + wait > deadline:
                break
            self.log(f"telegram {method}: {last.description if last else ''}; retry {number} in {wait:.1f}s")
            self.sleep(wait)
        assert last is not None
        raise TelegramError(method, f"gave up after retries: {last.description}", last.status, False)


def _multipart_envelope(boundary: str, fields: dict[str, str], file_field: str, filename: str) -> tuple[bytes, bytes]:
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
    )
    return b"".join(parts), f"\r\n--{boundary}--\r\n".encode()
