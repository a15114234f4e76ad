"""A small client of Resend's sending API (`POST /emails`), stdlib only.

Every send carries an `Idempotency-Key` (Resend keeps them 24 h and answers a repeated key with the first answer),
so a request whose answer was lost is sent again safely (retry.py: timeouts, 5xx, 429 after `retry-after`, an
earlier attempt still in progress). The rate-limit headers of each answer pace the next request of this client.
The API key never appears in an error, a log line or a repr.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nextmavens.email.retry import pause_after, retry_wait

DEFAULT_URL = "https://api.resend.com"
MAX_IDEMPOTENCY_KEY = 256
ERROR_TEXT_MAX = 300
USER_AGENT = "nextmavens-email/1"


class ResendError(RuntimeError):
    """Resend refused the send (`status`, its error `name`), or gave no usable answer in time (status None)."""

    def __init__(self, message: str, status: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.name = name

    @property
    def permanent(self) -> bool:
        """Sending the same again cannot succeed (a 4xx other than 429)."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


@dataclass(frozen=True)
class Outgoing:
    """One email as Resend takes it."""

    sender: str  # `Name <address>`
    to: tuple[str, ...]
    subject: str
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.sender, "to": list(self.to), "subject": self.subject}
        if self.html is not None:
            out["html"] = self.html
        if self.text is not None:
            out["text"] = self.text
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to
        if self.tags:
            out["tags"] = [{"name": n, "value": v} for n, v in self.tags]
        return out


def check_url(url: str) -> str:
    """https, or http to a loopback address (the stand-in in tests)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and host in ("127.0.0.1", "::1", "localhost"):
        return url.rstrip("/")
    raise ValueError(f"Resend's URL must be https (or http to loopback), got {url!r}")


@dataclass
class ResendClient:
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_URL
    timeout_s: float = 10.0
    max_attempts: int = 6
    deadline_s: float = 60.0  # the whole send, retries and waits included
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _gate: float = field(default=0.0, repr=False)  # monotonic time before which no request goes (rate-limit headers)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.base_url = check_url(self.base_url)

    def send(self, email: Outgoing, idempotency_key: str) -> str:
        """Resend's id of the email; ResendError when refused or when no answer came within the bounds."""
        if not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY or not idempotency_key.isprintable():
            raise ValueError(f"an idempotency key is 1-{MAX_IDEMPOTENCY_KEY} printable characters")
        data = json.dumps(email.body()).encode()
        started = self.clock()
        last: ResendError | None = None
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_gate(started)
            status, headers, answer = self._post("/emails", data, idempotency_key)
            self._pace(pause_after(status, headers))
            if status is not None and 200 <= status < 300:
                provider_id = answer.get("id") if isinstance(answer, dict) else None
                if not isinstance(provider_id, str) or not provider_id:
                    raise ResendError("Resend answered without an email id", status)
                return provider_id
            last = _error_of(status, answer)
            wait = retry_wait(status, headers, last.name, attempt)
            if wait is None:
                raise last
            if status == 429:
                self._pace(wait)
            if self.clock() + wait - started > self.deadline_s:
                break
            self.sleep(wait)
        assert last is not None
        raise ResendError(f"{last} (gave up after {attempt} attempts)", last.status, last.name)

    def _pace(self, wait: float) -> None:
        if wait > 0:
            with self._lock:
                self._gate = max(self._gate, self.clock() + wait)

    def _wait_for_gate(self, started: float) -> None:
        with self._lock:
            wait = self._gate - self.clock()
        if wait > 0:
            if self.clock() + wait - started > self.deadline_s:
                raise ResendError("Resend's rate limit leaves no room before the send's deadline", 429)
            self.sleep(wait)

    def _post(self, path: str, data: bytes, idempotency_key: str) -> tuple[int | None, dict[str, str], Any]:
        request = urllib.request.Request(self.base_url + path, data=data, method="POST")  # noqa: S310 - check_url
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", idempotency_key)
        request.add_header("User-Agent", USER_AGENT)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return response.status, _headers(response.headers), _json(response.read(1 << 20))
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _headers(exc.headers), _json(exc.read(1 << 20))
        except (OSError, ValueError):  # timeouts, refused or reset connections, a broken answer: no answer
            return None, {}, None


def _headers(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers.items() if headers is not None else ())}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def _error_of(status: int | None, answer: Any) -> ResendError:
    if status is None:
        return ResendError("Resend did not answer (timeout or connection failure)")
    name = answer.get("name") if isinstance(answer, Mapping) else None
    message = answer.get("message") if isinstance(answer, Mapping) else None
    text = str(message)[:ERROR_TEXT_MAX] if message else "no message"
    kind = str(name) if name else None
    return ResendError(f"Resend refused the send ({status} {kind or 'error'}): {text}", status, kind)
