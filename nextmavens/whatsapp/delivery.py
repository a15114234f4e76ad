"""Posting one forwarded row to a project's app: resolve the host once, refuse it unless every address passes the
policy (destination.py), connect to a checked address with the original Host header and TLS server name (no second
lookup a rebinding name could answer differently), follow no redirect, and give up after `timeout_s` in all.

Standard library only (http.client), as the product's other outbound clients. The outcome's text is for logs: it
names the host and port, never the URL's path or query, the body or a header.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from nextmavens.whatsapp.destination import BadDestination, Destination, IPAddress, destination, refused

DEFAULT_TIMEOUT_S = 10.0
RESPONSE_READ_BYTES = 64 * 1024  # the app's answer is read (up to this) and dropped: only its status counts
USER_AGENT = "nextmavens-forwarder"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    detail: str  # "HTTP 204", "timed out", "refused: 10.0.0.5 is private"...
    stopped: bool = False  # the poster was closed meanwhile: not an attempt the app failed


STOPPED = Outcome(False, "stopped", stopped=True)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the name (or literal, in whatever form getaddrinfo reads: decimal, octal...) stands for."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to `address` while the request names `host`: Host header and TLS SNI are the URL's."""

    def __init__(
        self,
        place: Destination,
        address: IPAddress,
        timeout: float,
        tls: ssl.SSLContext | None,
        opened: list[socket.socket],
    ) -> None:
        super().__init__(place.host, place.port, timeout=timeout)
        self._place, self._address, self._tls, self._opened = place, address, tls, opened

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self._place.port), self.timeout)
        self._opened.append(sock)
        if self._place.scheme == "https":
            context = self._tls or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self._place.host)
            self._opened.append(sock)
        self.sock = sock


class Poster:
    """One post at a time. Its deadline ends the post running by shutting its sockets; `close()` (from another
    thread) does the same and refuses every later post, so a worker stopping never waits out a slow app."""

    def __init__(self, allow_private: bool = False, tls: ssl.SSLContext | None = None) -> None:
        self.allow_private = allow_private
        self.tls = tls
        self._lock = threading.Lock()
        self._opened: list[socket.socket] = []
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            for sock in self._opened:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float = DEFAULT_TIMEOUT_S) -> Outcome:
        if self._closed:
            return STOPPED
        try:
            place = destination(url)
        except BadDestination as exc:
            return Outcome(False, f"refused: {exc}")
        try:
            addresses = resolve(place.host, place.port)
        except (OSError, UnicodeError, ValueError) as exc:
            return Outcome(False, f"{place.label}: the name does not resolve ({type(exc).__name__})")
        reason = refused(addresses, self.allow_private)
        if reason is not None:
            return Outcome(False, f"{place.label}: refused: {reason}")
        ends_at = time.monotonic() + timeout_s
        deadline = threading.Timer(timeout_s, self._shutdown)
        deadline.daemon = True
        deadline.start()
        try:
            outcome = self._send(place, addresses, body, headers, ends_at)
        finally:
            deadline.cancel()
            with self._lock:
                for sock in self._opened:
                    sock.close()
                self._opened = []
        return STOPPED if self._closed and not outcome.delivered else outcome

    def _send(
        self, place: Destination, addresses: list[IPAddress], body: bytes, headers: dict[str, str], ends_at: float
    ) -> Outcome:
        failure = "no address answered"
        for address in addresses:
            if self._closed:
                return STOPPED
            left = ends_at - time.monotonic()
            if left <= 0:
                return Outcome(False, f"{place.label}: timed out")
            connection = _PinnedConnection(place, address, left, self.tls, self._opened)
            try:
                connection.request(
                    "POST",
                    place.target,
                    body=body,
                    headers={
                        **headers,
                        "Content-Type": "application/json",
                        "User-Agent": USER_AGENT,
                        "Connection": "close",
                    },
                )
                response = connection.getresponse()
                response.read(RESPONSE_READ_BYTES)
                status = response.status
            except TimeoutError:
                return Outcome(False, f"{place.label}: timed out")
            except (OSError, http.client.HTTPException) as exc:
                if time.monotonic() >= ends_at:
                    return Outcome(False, f"{place.label}: timed out")
                failure = f"connection failed ({type(exc).__name__})"
                continue
            finally:
                connection.close()
            return Outcome(200 <= status < 300, f"{place.label}: HTTP {status}")
        return Outcome(False, f"{place.label}: {failure}")
