"""A local contract stand-in for Resend's sending API, for tests and benchmarks only (never production).

It serves `POST /emails` with the answers Resend documents (api-reference/errors, dashboard/emails/idempotency-keys,
the "API Rate Limit" changelog) and refuses what Resend refuses:
- no `Authorization: Bearer` -> 401 missing_api_key; a key that is not the account's -> 401 validation_error;
- a `from` whose domain the account has not verified -> 403 validation_error;
- `from`, `to` or `subject` missing -> 422 missing_required_field; more than 50 recipients, neither html nor text,
  a tag name or value outside ASCII letters, digits, `_` and `-` (1-256), or a body that is not a JSON object
  -> 422 validation_error;
- an `Idempotency-Key` outside 1-256 characters -> 400 invalid_idempotency_key; a key seen in the last 24 h answers
  the first request's answer and sends nothing; with another payload -> 409 invalid_idempotent_request; while the
  first request with that key is still being handled -> 409 concurrent_idempotent_requests;
- more requests per second than the account's limit -> 429 rate_limit_exceeded with `retry-after`; every answer
  carries `ratelimit-limit/remaining/reset`.
On demand: the next N requests answer 429 (with a chosen retry-after), the next N sends are delayed (the email is
sent but the answer comes late: a client's timeout), the clock moves on (keys expire after 24 h).
It also signs webhooks the way Svix does (svix_headers), so a receiver can be tested against a sender it does not
share code with. Loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devkit.standins.loopback import LoopbackStandin

IDEMPOTENCY_TTL_S = 24 * 3600
MAX_RECIPIENTS = 50
MAX_KEY = 256
_TAG = re.compile(r"[A-Za-z0-9_-]{1,256}")  # a tag's name and value (api-reference/emails/send-email)
_ADDRESS = re.compile(r"(?:[^<>]*<)?\s*([^<>\s@]+@([^<>\s@]+))\s*>?\s*")


@dataclass
class SentEmail:
    id: str
    body: dict[str, Any]
    idempotency_key: str | None
    at: float


@dataclass
class StandinState:
    api_key: str
    verified_domains: set[str]
    rate_per_s: int = 1000  # the account's requests per second (Resend's default is 2; tests choose)
    clock_offset: float = 0.0
    fail_429_next: int = 0
    retry_after_s: int = 1
    delay_next_sends: int = 0
    delay_s: float = 0.0
    sent: list[SentEmail] = field(default_factory=list)
    requests: int = 0
    statuses: list[int] = field(default_factory=list)
    keys: dict[str, tuple[float, str, int, dict[str, Any]]] = field(default_factory=dict)  # key -> first answer
    in_progress: set[str] = field(default_factory=set)
    window: tuple[int, int] = (0, 0)  # (second, requests in it)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return time.time() + self.clock_offset

    def sent_with_key(self, key: str) -> list[SentEmail]:
        return [s for s in self.sent if s.idempotency_key == key]


def _error(status: int, name: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "name": name, "message": message}


def check_email(body: Any, verified: set[str]) -> tuple[int, dict[str, Any]] | None:
    """Resend's refusal of a send's body, or None."""
    if not isinstance(body, dict):
        return _error(422, "validation_error", "The request body must be a JSON object.")
    missing = [name for name in ("from", "to", "subject") if not body.get(name)]
    if missing:
        return _error(422, "missing_required_field", f"Missing `{missing[0]}` field.")
    sender = body["from"]
    match = _ADDRESS.fullmatch(sender) if isinstance(sender, str) else None
    if match is None:
        return _error(422, "validation_error", "Invalid `from` field. The email address needs to follow the "
                      "`email@example.com` or `Name <email@example.com>` format.")
    recipients = body["to"] if isinstance(body["to"], list) else [body["to"]]
    if len(recipients) > MAX_RECIPIENTS or not all(isinstance(r, str) and _ADDRESS.fullmatch(r) for r in recipients):
        return _error(422, "validation_error", "Invalid `to` field.")
    if not body.get("html") and not body.get("text"):
        return _error(422, "validation_error", "Missing `html` or `text` field.")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and all(isinstance(t.get(k), str) and _TAG.fullmatch(t[k]) for k in ("name", "value"))
        for t in tags
    ):
        return _error(422, "validation_error", "Tags should only contain ASCII letters, numbers, underscores, or "
                      "dashes.")
    domain = match.group(2).lower()
    if domain not in verified:
        return _error(403, "validation_error", f"The {domain} domain is not verified. Please, add and verify your "
                      "domain.")
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, and never log the key
        return

    def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        with self.server.state.lock:  # recorded before the client can read the answer
            self.server.state.statuses.append(status)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/emails":
            return self._answer(*_error(404, "not_found", "Route not found."), {})
        with state.lock:
            state.requests += 1
            second = int(state.now())
            count = state.window[1] + 1 if state.window[0] == second else 1
            state.window = (second, count)
            limit_headers = {
                "ratelimit-limit": str(state.rate_per_s),
                "ratelimit-remaining": str(max(0, state.rate_per_s - count)),
                "ratelimit-reset": "1",
            }
            limited = state.fail_429_next > 0 or count > state.rate_per_s
            state.fail_429_next = max(0, state.fail_429_next - 1)
        if limited:
            words = f"Too many requests. You can only make {state.rate_per_s} requests per second."
            status, payload = _error(429, "rate_limit_exceeded", words)
            return self._answer(status, payload, {**limit_headers, "retry-after": str(state.retry_after_s)})
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self._answer(*_error(401, "missing_api_key", "Missing API key in the authorization header."),
                                limit_headers)
        if not hmac.compare_digest(key.strip().encode(), state.api_key.encode()):
            return self._answer(*_error(401, "validation_error", "API key is invalid"), limit_headers)
        idempotency_key = self.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY:
            return self._answer(*_error(400, "invalid_idempotency_key", "The key must be between 1-256 chars."),
                                limit_headers)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        fingerprint = hashlib.sha256(raw).hexdigest()
        if idempotency_key is not None:
            replay: tuple[int, dict[str, Any]] | None = None
            with state.lock:
                first = state.keys.get(idempotency_key)
                if first is not None and state.now() - first[0] > IDEMPOTENCY_TTL_S:
                    del state.keys[idempotency_key]
                    first = None
                if first is not None:
                    replay = (
                        (first[2], first[3])
                        if first[1] == fingerprint
                        else _error(409, "invalid_idempotent_request", "Same idempotency key used with a different "
                                    "request payload.")
                    )
                elif idempotency_key in state.in_progress:
                    replay = _error(409, "concurrent_idempotent_requests", "Same idempotency key used while original "
                                    "request is still in progress.")
                else:
                    state.in_progress.add(idempotency_key)
            if replay is not None:
                return self._answer(*replay, limit_headers)
        try:
            refused = check_email(body, state.verified_domains)
            if refused is not None:
                status, payload = refused
            else:
                assert isinstance(body, dict)
                with state.lock:
                    email_id = str(uuid.UUID(int=next(state.ids)))
                    state.sent.append(SentEmail(email_id, body, idempotency_key, state.now()))
                    delay = state.delay_s if state.delay_next_sends > 0 else 0.0
                    state.delay_next_sends = max(0, state.delay_next_sends - 1)
                status, payload = 200, {"id": email_id}
                if delay:
                    time.sleep(delay)  # sent, but the answer comes after the client stopped waiting
            if idempotency_key is not None:
                with state.lock:
                    state.keys[idempotency_key] = (state.now(), fingerprint, status, payload)
        finally:
            if idempotency_key is not None:
                with state.lock:
                    state.in_progress.discard(idempotency_key)
        try:
            self._answer(status, payload, limit_headers)
        except OSError:
            pass  # the client went away (its timeout): the email was sent all the same


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    state: StandinState


class ResendStandin(LoopbackStandin):
    """`with ResendStandin(api_key, {"mail.shop.example"}) as resend:`; `resend.base_url` is what the client gets."""

    def __init__(self, api_key: str, verified_domains: set[str], rate_per_s: int = 1000) -> None:
        self.state = StandinState(api_key=api_key, verified_domains=set(verified_domains), rate_per_s=rate_per_s)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self.state
        super().__init__(server)


def new_signing_secret() -> str:
    """A webhook signing secret as Resend shows it: `whsec_` and base64 of random bytes."""
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def svix_headers(secret: str, msg_id: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """The headers Svix sends a webhook with: HMAC-SHA256 keyed by the secret's base64 part after `whsec_`, over
    `id.timestamp.body`, base64, as `v1,<signature>`."""
    stamp = str(math.floor(time.time() if timestamp is None else timestamp))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    return {"svix-id": msg_id, "svix-timestamp": stamp, "svix-signature": "v1," + signature.decode()}
