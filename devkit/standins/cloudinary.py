"""A local contract stand-in for Cloudinary's Upload and Admin APIs, for tests only (never production).

It checks each signed request the way Cloudinary's "Generating authentication signatures" page specifies, with its
own code: every parameter but file, cloud_name, resource_type and api_key, sorted, `name=value` joined by `&`, the
API secret appended, SHA-1 hex (SHA-256 accepted when `signature_algorithm=sha256`); a wrong or missing signature,
an unknown api_key or a timestamp more than an hour old is refused (401, `{"error": {"message"}}`). Uploads (multipart)
store the bytes and answer public_id, version, resource_type, bytes, etag (MD5 hex) and secure_url; `overwrite=false`
keeps an existing asset; destroy answers `{"result": "ok" | "not found"}`; the Admin API's resource listing (basic
authentication) pages by prefix. Another cloud's name or a resource type other than image, video or raw is not found
(404; an upload's `auto`, resolved by content, is not modelled). On demand: the next upload's stored bytes are
corrupted (an upload the offload must not trust). Loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devkit.standins.loopback import LoopbackStandin

MAX_AGE_S = 3600
RESOURCE_TYPES = ("image", "video", "raw")
_NOT_SIGNED = {"file", "cloud_name", "resource_type", "api_key", "signature", "signature_algorithm"}


@dataclass
class Asset:
    public_id: str
    resource_type: str
    content: bytes
    version: int


@dataclass
class CloudinaryState:
    cloud_name: str
    api_key: str
    api_secret: str
    assets: dict[tuple[str, str], Asset] = field(default_factory=dict)  # (resource_type, public_id)
    corrupt_next_uploads: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def expected_signature(params: dict[str, str], secret: str, algorithm: str) -> str:
    signed = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in _NOT_SIGNED and params[k] != "")
    digest = hashlib.sha256 if algorithm == "sha256" else hashlib.sha1
    return digest((signed + secret).encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        with self.server.state.lock:
            self.server.state.refused.append(message)
        self._json(status, {"error": {"message": message}})

    def _route(self) -> tuple[str, str, str] | None:
        """(resource type, action, ""), or None for what Cloudinary does not serve: another cloud's name (these
        credentials are this cloud's alone) or a resource type other than its own three (`auto`, which Cloudinary
        resolves by content, is not modelled)."""
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "v1_1" or parts[1] != self.server.state.cloud_name:
            return None
        if len(parts) == 4 and parts[2] in RESOURCE_TYPES:
            return parts[2], parts[3], ""
        if len(parts) == 5 and parts[2] == "resources" and parts[3] in RESOURCE_TYPES and parts[4] == "upload":
            return parts[3], "list", ""
        return None

    def _fields(self) -> tuple[dict[str, str], bytes | None, str]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = self.headers.get("Content-Type") or ""
        if kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + raw)
            fields: dict[str, str] = {}
            content: bytes | None = None
            filename = ""
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                if name == "file":
                    content, filename = data, str(part.get_filename() or "")
                elif isinstance(name, str):
                    fields[name] = data.decode()
            return fields, content, filename
        return dict(parse_qsl(raw.decode())), None, ""

    def _check_signed(self, params: dict[str, str]) -> str | None:
        state = self.server.state
        if params.get("api_key") != state.api_key:
            return "Invalid api_key"
        stamp = params.get("timestamp", "")
        if not stamp.isdigit():
            return "Missing required parameter - timestamp"
        if time.time() - int(stamp) > MAX_AGE_S:
            return f"Stale request - reported time is {stamp} which is more than 1 hour ago"
        expected = expected_signature(params, state.api_secret, params.get("signature_algorithm", "sha1"))
        if not hmac.compare_digest(params.get("signature", ""), expected):
            return "Invalid Signature " + params.get("signature", "")
        return None

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        route = self._route()
        if route is None or route[1] not in ("upload", "destroy"):
            return self._refuse(404, "Resource not found")
        resource_type, action, _ = route
        params, content, _ = self._fields()
        problem = self._check_signed(params)
        if problem is not None:
            return self._refuse(401, problem)
        folder = params.get("folder", "").strip("/")
        public_id = params.get("public_id", "")
        if action == "destroy":
            with state.lock:
                found = state.assets.pop((resource_type, public_id), None)
            return self._json(200, {"result": "ok" if found else "not found"})
        if content is None:
            return self._refuse(400, "Missing required parameter - file")
        full_id = f"{folder}/{public_id}" if folder else public_id
        with state.lock:
            existing = state.assets.get((resource_type, full_id))
            if existing is None or params.get("overwrite") != "false":
                stored = content
                if state.corrupt_next_uploads > 0:
                    state.corrupt_next_uploads -= 1
                    stored = content[:-1] + bytes([content[-1] ^ 0xFF]) if content else b"x"
                existing = Asset(full_id, resource_type, stored, int(time.time()))
                state.assets[(resource_type, full_id)] = existing
        self._json(200, self._describe(existing))

    def _describe(self, asset: Asset) -> dict[str, Any]:
        state = self.server.state
        host = f"127.0.0.1:{self.server.server_address[1]}"
        return {
            "public_id": asset.public_id,
            "version": asset.version,
            "resource_type": asset.resource_type,
            "type": "upload",
            "bytes": len(asset.content),
            "etag": hashlib.md5(asset.content).hexdigest(),  # noqa: S324 - Cloudinary's etag is an MD5
            "secure_url": f"http://{host}/{state.cloud_name}/{asset.resource_type}/upload/v{asset.version}/{asset.public_id}",
        }

    def do_GET(self) -> None:  # noqa: N802
        state = self.server.state
        route = self._route()
        if route is None or route[1] != "list":
            return self._refuse(404, "Resource not found")
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        expected = base64.b64encode(f"{state.api_key}:{state.api_secret}".encode()).decode()
        if scheme != "Basic" or not hmac.compare_digest(token.encode(), expected.encode()):
            return self._refuse(401, "Invalid credentials")
        query = dict(parse_qsl(urlsplit(self.path).query))
        prefix = query.get("prefix", "")
        limit = min(int(query.get("max_results", "10")), 500)
        start = int(query.get("next_cursor") or 0)
        with state.lock:
            found = sorted(a.public_id for (kind, _), a in state.assets.items() if kind == route[0])
            chosen = [state.assets[(route[0], p)] for p in found if p.startswith(prefix)]
        page = chosen[start : start + limit]
        answer: dict[str, Any] = {"resources": [self._describe(a) for a in page]}
        if start + limit < len(chosen):
            answer["next_cursor"] = str(start + limit)
        self._json(200, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: CloudinaryState


class CloudinaryStandin(LoopbackStandin):
    """`with CloudinaryStandin("demo", "key", "secret") as cloud:`; `cloud.base_url` is what the client gets."""

    def __init__(self, cloud_name: str, api_key: str, api_secret: str) -> None:
        self.state = CloudinaryState(cloud_name, api_key, api_secret)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self.state
        super().__init__(server)
