"""A small JSON-over-HTTP helper for host-internal admin APIs (stdlib only, bounded in time).

Admin APIs are reached only inside the host: a URL whose host is a public address or a public-looking
dotted name is refused before any request is sent. Error texts are scrubbed of every secret handed in.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt

DEFAULT_TIMEOUT_S = 10.0
PLATFORM_TOKEN_LIFETIME_S = 60


class AdminApiError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


def check_internal(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise AdminApiError(f"admin URL must be http(s)://host:port, got {url!r}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and "." in host:
            raise AdminApiError(
                f"admin API host {host!r} is not host-internal (use an address or a container name)"
            ) from None
        return url.rstrip("/")
    if not (address.is_loopback or address.is_private):
        raise AdminApiError(f"admin API address {host} is not loopback or private")
    return url.rstrip("/")


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text[:1000]


def platform_token(secret: str, now: int | None = None) -> str:
    """Short-lived HS256 bearer for Supavisor's and Realtime's tenant APIs (platform-only secret)."""
    if len(secret.encode()) < 32:
        raise AdminApiError("the platform API secret must be at least 32 bytes")
    issued = int(time.time()) if now is None else now
    return jwt.encode(
        {"iss": "nextmavens", "role": "platform", "iat": issued, "exp": issued + PLATFORM_TOKEN_LIFETIME_S},
        secret,
        algorithm="HS256",
    )


def request_json(
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    secrets: Iterable[str] = (),
) -> tuple[int, Any]:
    """(status, parsed JSON body or None). 4xx/5xx come back as statuses; network failures raise."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked by check_internal
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AdminApiError(scrub(f"{method} {url}: {exc}", secrets)) from None
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": scrub(raw.decode(errors="replace"), secrets)}
