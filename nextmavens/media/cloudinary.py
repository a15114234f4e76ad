"""A small client of Cloudinary's APIs, stdlib only: signed upload and destroy (Upload API), listing by folder
(Admin API, basic authentication). The API secret never appears in an error, a log line or a repr.

An upload answers the asset's `public_id`, `secure_url`, `bytes` and `etag` (the MD5 of the stored bytes): the
offload compares those with the local file before it deletes anything (offload.py).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nextmavens.media.signing import sign

DEFAULT_URL = "https://api.cloudinary.com"
RESOURCE_TYPES = ("image", "video", "raw")


class CloudinaryError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Uploaded:
    public_id: str
    resource_type: str
    secure_url: str
    bytes: int
    etag: str  # MD5 hex of the stored content


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return url.rstrip("/")
    raise ValueError(f"Cloudinary's URL must be https (or http to loopback), got {url!r}")


@dataclass
class CloudinaryClient:
    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    base_url: str = DEFAULT_URL
    timeout_s: float = 60.0
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.base_url = check_url(self.base_url)

    def _signed(self, params: dict[str, Any]) -> dict[str, Any]:
        signed = {**params, "timestamp": int(self.clock())}
        return {**signed, "api_key": self.api_key, "signature": sign(signed, self.api_secret)}

    def upload(self, content: bytes, public_id: str, folder: str, resource_type: str, filename: str) -> Uploaded:
        """Store `content` as `folder/public_id` (overwrite refused: a name is uploaded once)."""
        if resource_type not in RESOURCE_TYPES:
            raise ValueError(f"resource_type is one of {RESOURCE_TYPES}")
        fields = self._signed({"public_id": public_id, "folder": folder, "overwrite": "false"})
        body, boundary = _multipart(fields, ("file", filename, content))
        answer = self._call(
            "POST", f"/v1_1/{self.cloud_name}/{resource_type}/upload", body, f"multipart/form-data; boundary={boundary}"
        )
        try:
            return Uploaded(
                public_id=str(answer["public_id"]),
                resource_type=str(answer.get("resource_type", resource_type)),
                secure_url=str(answer["secure_url"]),
                bytes=int(answer["bytes"]),
                etag=str(answer["etag"]),
            )
        except (KeyError, TypeError, ValueError):
            raise CloudinaryError("Cloudinary's upload answer lacks public_id, secure_url, bytes or etag") from None

    def destroy(self, public_id: str, resource_type: str) -> bool:
        """True when the asset was deleted, False when Cloudinary had no such asset."""
        fields = self._signed({"public_id": public_id, "invalidate": "true"})
        body = urllib.parse.urlencode(fields).encode()
        answer = self._call(
            "POST", f"/v1_1/{self.cloud_name}/{resource_type}/destroy", body, "application/x-www-form-urlencoded"
        )
        return answer.get("result") == "ok"

    def list_folder(self, folder: str, resource_type: str, max_pages: int = 100) -> Iterator[dict[str, Any]]:
        """The assets under `folder/` (Admin API, paged by next_cursor; bounded to `max_pages` pages)."""
        cursor: str | None = None
        for _ in range(max_pages):
            query = {"prefix": f"{folder}/", "max_results": "500", "type": "upload"}
            if cursor:
                query["next_cursor"] = cursor
            path = f"/v1_1/{self.cloud_name}/resources/{resource_type}/upload?{urllib.parse.urlencode(query)}"
            answer = self._call("GET", path, None, None, basic=True)
            yield from answer.get("resources") or []
            cursor = answer.get("next_cursor")
            if not cursor:
                return
        raise CloudinaryError(f"more than {max_pages} pages of assets under {folder}/")

    def _call(self, method: str, path: str, body: bytes | None, content_type: str | None, basic: bool = False) -> Any:
        request = urllib.request.Request(self.base_url + path, data=body, method=method)  # noqa: S310 - check_url
        if content_type:
            request.add_header("Content-Type", content_type)
        if basic:
            token = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return json.loads(response.read(1 << 22).decode())
        except urllib.error.HTTPError as exc:
            with exc:
                detail = _error_text(exc.read(1 << 16))
            where = f"{method} {path.split('?')[0]}"
            message = f"Cloudinary refused {where} ({exc.code}): {detail}".replace(self.api_secret, "[secret]")
            raise CloudinaryError(message, exc.code) from None
        except (OSError, ValueError) as exc:
            where = f"{method} {path.split('?')[0]}"
            raise CloudinaryError(f"Cloudinary did not answer {where} ({type(exc).__name__})") from None


def _error_text(raw: bytes) -> str:
    try:
        message = json.loads(raw.decode()).get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message)[:300] if message else "no message"


def _multipart(fields: dict[str, Any], file: tuple[str, str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    name, filename, content = file
    safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    out += content + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), boundary
