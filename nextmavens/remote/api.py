"""An HTTP client for the platform service's API: bearer token, JSON requests, a line stream for logs.

Every failure is one exception, RemoteError, carrying the HTTP status (0 when no answer came), the service's
error code and a message that says what to do. The token is sent only in the Authorization header and never
appears in an error, a repr or a log line.

TLS certificates are verified. A private CA (a staging host, a company proxy) is given as a PEM bundle in
NEXTMAVENS_CA_BUNDLE.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

CA_BUNDLE_ENV = "NEXTMAVENS_CA_BUNDLE"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "nextmavens-cli"

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Requests reuse the client's connections (keep-alive: an MCP server's tool calls, one after another). One unused
# this long is closed instead: servers drop idle ones (uvicorn after 5 s), and a request must never meet a
# connection the server is closing at that moment. A GET that finds its reused connection gone is sent again once.
KEEP_IDLE_S = 2.0
KEEP_MAX = 4
LOGIN_AGAIN = "the token is invalid, expired or revoked: run `nextmavens login` with a new token"


class RemoteError(Exception):
    """A request that did not succeed: `status` (0: no answer), the service's `code`, and `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


def path_of(*parts: str) -> str:
    """An API path from segments, each percent-encoded: `path_of("v1", "projects", org, ref)`."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


class ApiClient:
    """One service at `url` (https://api.example.com, or http:// on loopback), as the holder of `token`."""

    def __init__(self, url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(0, "bad_url", f"{url!r} is not an http(s) URL of the platform service")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            # the token would cross the network in clear
            raise RemoteError(0, "bad_url", f"{url!r}: use https:// (plain http only to this machine, for tests)")
        if not (token.isascii() and token.isprintable() and " " not in token):
            raise RemoteError(0, "bad_token", "the token holds characters no access token has: copy it again")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        self._token = token
        self.timeout = timeout
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._idle_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApiClient({self.url!r})"

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        """The answer's JSON (None for an empty body), or RemoteError."""
        conn, reused = self._take()
        try:
            try:
                response = self._send(conn, method, path, body, params, "application/json")
            except RemoteError as exc:
                if not (reused and method == "GET" and exc.code == "connection"):
                    raise
                conn.close()  # the server closed the kept connection: a GET is safe to send again, once
                conn = self._connection(self.timeout)
                response = self._send(conn, method, path, body, params, "application/json")
            data = self._read(response)
        except BaseException:
            conn.close()
            raise
        self._keep(conn, response)
        self._raise_for(response.status, data, method, path)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise RemoteError(response.status, "bad_answer", f"{method} {path}: the answer is not JSON") from None

    def stream_lines(
        self,
        path: str,
        params: dict[str, str] | None = None,
        read_timeout: float = 300.0,
        upload: tuple[bytes, str] | None = None,
    ) -> Iterator[str]:
        """The answer's lines as they arrive (text/event-stream or plain lines), without line ends. Ends when
        the service closes the stream; RemoteError when nothing arrives for `read_timeout` seconds. With
        `upload` (bytes, content type) it is a POST of those bytes (an app's `git archive`), else a GET."""
        conn = self._connection(read_timeout)
        method = "GET" if upload is None else "POST"
        try:
            response = self._send(conn, method, path, None, params, "text/event-stream", upload)
            if response.status >= 300:
                self._raise_for(response.status, self._read(response), method, path)
            while True:
                try:
                    line = response.readline()
                except TimeoutError:
                    raise RemoteError(
                        0, "timeout", f"no data from {self.url} for {read_timeout:.0f} s; the stream was closed"
                    ) from None
                except OSError as exc:
                    broke = exc.strerror or type(exc).__name__
                    raise RemoteError(0, "connection", f"the stream from {self.url} broke: {broke}") from None
                if not line:
                    return
                yield line.decode("utf-8", "replace").rstrip("\r\n")
        finally:
            conn.close()

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A kept connection used less than KEEP_IDLE_S ago (True), or a new one (False)."""
        now = time.monotonic()
        with self._idle_lock:
            while self._idle:
                conn, since = self._idle.pop()
                if now - since < KEEP_IDLE_S:
                    return conn, True
                conn.close()
        return self._connection(self.timeout), False

    def _keep(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        if response.will_close:
            conn.close()
            return
        with self._idle_lock:
            if len(self._idle) < KEEP_MAX:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        """Close the kept connections (a later request opens another)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=tls_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        accept: str,
        upload: tuple[bytes, str] | None = None,
    ) -> http.client.HTTPResponse:
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept, "User-Agent": USER_AGENT}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif upload is not None:
            payload, headers["Content-Type"] = upload
        try:
            conn.request(method, target, body=payload, headers=headers)
            return conn.getresponse()
        except ssl.SSLCertVerificationError as exc:
            raise RemoteError(
                0,
                "tls",
                f"the certificate of {self.url} is not trusted ({exc.verify_message}); for a private CA set "
                f"{CA_BUNDLE_ENV} to its PEM bundle",
            ) from None
        except ConnectionRefusedError:
            raise RemoteError(
                0, "connection", f"nothing answers at {self.url} (connection refused): is the URL right?"
            ) from None
        except TimeoutError:
            raise RemoteError(0, "timeout", f"{self.url} did not answer within {conn.timeout} s") from None
        except socket.gaierror:
            raise RemoteError(0, "connection", f"cannot resolve the host of {self.url}: is the URL right?") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise RemoteError(0, "connection", f"cannot reach {self.url}: {reason}") from None

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except TimeoutError:
            raise RemoteError(0, "timeout", f"{self.url} stopped answering mid-response") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(0, "connection", f"the answer from {self.url} broke off: {type(exc).__name__}") from None

    def _raise_for(self, status: int, data: bytes, method: str, path: str) -> None:
        if status < 300:
            return
        code, message = error_of(data, status)
        if status == 401:
            message = LOGIN_AGAIN
        elif status == 403:
            message = f"{message}: {role_needed(message)}"
        elif status == 404 and code == "not_found" and message == "no such route":
            message = f"{self.url} has no route {method} {path}: is it the platform service, and is it up to date?"
        raise RemoteError(status, code, message)


def error_of(data: bytes, status: int) -> tuple[str, str]:
    """The service's {"error": {"code", "message"}}, or a stand-in for a body that is not one (a proxy's page)."""
    try:
        error = json.loads(data)["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{status}", f"HTTP {status} from the server, not an answer of the platform service"


def role_needed(message: str) -> str:
    """What a 403 asks for: the lowest role of the refused action (named in the service's message), and a token
    that is not read-only for writes."""
    from nextmavens.platform.authz import RULES, Action  # pure and small: the rules the service decided by

    action = next((a for a in Action if f" {a.value} " in f" {message} "), None)
    if action is None:
        return "ask an owner of the org for a role or token that allows it"
    rule = RULES[action]
    needs = f"it needs the {rule.role} role (or higher) in the org"
    if rule.write:
        needs += " and a token that is not read-only"
    return needs + "; ask an owner of the org, then run `nextmavens login` with a token that has it"


def tls_context() -> ssl.SSLContext:
    bundle = os.environ.get(CA_BUNDLE_ENV)
    try:
        return ssl.create_default_context(cafile=bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise RemoteError(0, "tls", f"{CA_BUNDLE_ENV}={bundle}: cannot read it as a PEM bundle ({exc})") from None
