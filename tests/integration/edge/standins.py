"""Local HTTP stand-ins for admin APIs that cannot run here, implementing their documented contracts.

- Supavisor (lib/supavisor_web/router.ex, tenant_controller.ex, tenant_view.ex, user_view.ex):
  GET/PUT/DELETE /api/tenants/:external_id; PUT creates (201) or updates (200); views omit passwords.
- Realtime (lib/realtime_web/controllers/tenant_controller.ex, views/tenant_view.ex): same routes; create
  needs `extensions` and `jwt_secret`; the view drops db_password, returns the other connection settings
  encrypted and never returns jwt_secret.
- Kong DB-less admin API: POST /config with {"config": "<yaml or json>"}; `check_hash=1` answers 304 for an
  identical config; an invalid one answers 400 {"code":14,"name":"invalid declarative configuration",...}
  and the running config stays; GET /status reports configuration_hash.
All bind 127.0.0.1 on a free port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

SUPAVISOR_FIELDS = (
    "db_host", "db_port", "db_database", "ip_version", "upstream_ssl", "upstream_verify", "enforce_ssl",
    "require_user", "auth_query", "sni_hostname", "default_pool_size", "default_max_clients",
    "client_idle_timeout", "default_pool_strategy",
)  # fmt: skip
SUPAVISOR_DEFAULTS = {"default_pool_size": 15, "default_max_clients": 1000, "require_user": True}
ENCRYPTED_REALTIME_SETTINGS = ("db_host", "db_name", "db_user", "db_port")
KONG_PLUGINS = {"cors", "key-auth", "acl", "rate-limiting", "request-termination", "request-transformer"}


class StandIn:
    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.tenants: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    # subclasses: handle(method, path, query, body) -> (status, body)
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def authorised(self, header: str | None) -> bool:
        if self.secret is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        try:
            jwt.decode(header[7:], self.secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.InvalidTokenError:
            return False
        return True


class SupavisorStandIn(StandIn):
    def view(self, tenant: dict[str, Any]) -> dict[str, Any]:
        data = {"id": tenant["id"], "external_id": tenant["external_id"]}
        data.update({k: tenant.get(k, SUPAVISOR_DEFAULTS.get(k)) for k in SUPAVISOR_FIELDS})
        data["users"] = [
            {
                "db_user_alias": u["db_user"],
                "db_user": u["db_user"],
                "pool_size": u.get("pool_size"),
                "is_manager": u.get("is_manager", False),
                "mode_type": u.get("mode_type", "transaction"),
                "pool_checkout_timeout": 60000,
                "max_clients": None,
            }
            for u in tenant.get("users", [])
        ]
        return data

    def handle(self, method, path, query, body):
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "tenants"] or len(parts) != 3:
            return 404, {"error": "not found"}
        ref = parts[2]
        if method == "GET":
            tenant = self.tenants.get(ref)
            return (200, {"data": self.view(tenant)}) if tenant else (404, {"error": "not found"})
        if method == "PUT":
            params = (body or {}).get("tenant")
            if not isinstance(params, dict):
                return 400, {"error": "missing tenant"}
            if any("db_password" not in u for u in params.get("users", [])):
                return 422, {"errors": {"users": ["db_password can't be blank"]}}
            if ref in self.tenants:
                self.tenants[ref].update(params)
                return 200, {"data": self.view(self.tenants[ref])}
            self.tenants[ref] = {**params, "external_id": ref, "id": str(uuid.uuid4())}
            return 201, {"data": self.view(self.tenants[ref])}
        if method == "DELETE":
            return (204, None) if self.tenants.pop(ref, None) else (404, None)
        return 405, {"error": "method not allowed"}


class RealtimeStandIn(StandIn):
    def view(self, tenant: dict[str, Any]) -> dict[str, Any]:
        extensions = []
        for ext in tenant.get("extensions", []):
            settings = {k: v for k, v in ext["settings"].items() if k != "db_password"}
            for key in ENCRYPTED_REALTIME_SETTINGS:
                if key in settings:
                    settings[key] = base64.b64encode(hashlib.sha256(str(settings[key]).encode()).digest()).decode()
            extensions.append({"type": ext["type"], "settings": settings, "inserted_at": "2026-01-01T00:00:00"})
        return {
            "id": tenant["id"],
            "external_id": tenant["external_id"],
            "name": tenant.get("name"),
            "max_concurrent_users": tenant.get("max_concurrent_users", 200),
            "max_channels_per_client": 100,
            "max_events_per_second": 100,
            "max_joins_per_second": 100,
            "inserted_at": "2026-01-01T00:00:00",
            "extensions": extensions,
            "private_only": False,
        }

    def handle(self, method, path, query, body):
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "tenants"] or len(parts) != 3:
            return 404, {"error": "not found"}
        ref = parts[2]
        if method == "GET":
            tenant = self.tenants.get(ref)
            return (200, {"data": self.view(tenant)}) if tenant else (404, {"error": "not found"})
        if method == "PUT":
            params = (body or {}).get("tenant")
            if not isinstance(params, dict):
                return 400, {"error": "missing tenant"}
            if ref in self.tenants:
                self.tenants[ref].update(params)
                return 200, {"data": self.view(self.tenants[ref])}
            if "extensions" not in params or not params.get("jwt_secret"):
                return 422, {"errors": {"jwt_secret": ["can't be blank"]}}
            self.tenants[ref] = {**params, "external_id": ref, "id": str(uuid.uuid4())}
            return 201, {"data": self.view(self.tenants[ref])}
        if method == "DELETE":
            self.tenants.pop(ref, None)
            return 204, None
        return 405, {"error": "method not allowed"}


class KongStandIn(StandIn):
    def __init__(self, plugins: frozenset[str] = frozenset(KONG_PLUGINS)) -> None:
        super().__init__(None)
        self.plugins = plugins
        self.config: str | None = None
        self.hash = "00000000000000000000000000000000"
        self.loads = 0
        self.busy = 0  # answer this many POSTs with 429 first

    def handle(self, method, path, query, body):
        if method == "GET" and path == "/status":
            return 200, {"configuration_hash": self.hash, "server": {"connections_active": 1}}
        if method == "POST" and path == "/config":
            if self.busy > 0:
                self.busy -= 1
                return 429, {"message": "Currently loading previous configuration"}
            text = (body or {}).get("config")
            if not isinstance(text, str):
                return 400, {
                    "code": 14,
                    "name": "invalid declarative configuration",
                    "message": "expected config",
                }
            new_hash = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - stand-in
            if query.get("check_hash") == ["1"] and new_hash == self.hash:
                return 304, None
            try:
                document = json.loads(text)
            except ValueError:
                return 400, {"code": 14, "name": "invalid declarative configuration", "message": "bad json"}
            unknown_set = (
                {p["name"] for s in document.get("services", []) for p in s.get("plugins", [])}
                | {p["name"] for c in document.get("consumers", []) for p in c.get("plugins", [])}
            ) - self.plugins
            unknown = sorted(unknown_set)
            if unknown or "_format_version" not in document:
                key = next(
                    (k["key"] for c in document.get("consumers", []) for k in c.get("keyauth_credentials", [])),
                    "",
                )
                return 400, {
                    "code": 14,
                    "name": "invalid declarative configuration",
                    "message": f"config is invalid: plugins {unknown} not enabled; first key {key}",
                    "fields": {"services": [{"plugins": [{"name": f"plugin '{unknown}' not enabled"}]}]},
                }
            self.config, self.hash = text, new_hash
            self.loads += 1
            return 201, document
        return 404, {"message": "Not found"}


@contextmanager
def serve(standin: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def _run(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with standin.lock:
                standin.requests.append((method, url.path))
                if not standin.authorised(self.headers.get("Authorization")):
                    status, body = 401, {"message": "unauthorized"}
                else:
                    try:
                        parsed = json.loads(raw) if raw else None
                    except ValueError:
                        parsed = None
                    status, body = standin.handle(method, url.path, parse_qs(url.query), parsed)
            payload = b"" if body is None or status in (204, 304) else json.dumps(body).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._run("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._run("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._run("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._run("DELETE")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class KongProxyStandIn(StandIn):
    """Kong's proxy side, as far as routing and authentication go, answering from the config the admin
    stand-in holds: the route with the longest matching path on the request's host; request-termination
    answers its status; key-auth wants a known `apikey` (401 otherwise, as Kong answers); acl wants one of
    the consumer's groups (403). What passes is answered 200 with the service and consumer it reached."""

    def __init__(self, admin: KongStandIn) -> None:
        super().__init__(None)
        self.admin = admin

    def answer(self, host: str, path: str, query: dict[str, list[str]], apikey: str | None) -> tuple[int, Any]:
        document = json.loads(self.admin.config or "{}")
        host = host.split(":")[0].lower()
        best: tuple[int, dict[str, Any]] | None = None
        for service in document.get("services", []):
            for route in service.get("routes", []):
                if host not in route.get("hosts", []):
                    continue
                for prefix in route.get("paths", []):
                    if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                        best = (len(prefix), service)
        if best is None:
            return 404, {"message": "no Route matched with those values"}
        service = best[1]
        plugins = {p["name"]: p.get("config", {}) for p in service.get("plugins", [])}
        if "request-termination" in plugins:
            config = plugins["request-termination"]
            return int(config["status_code"]), {"message": config.get("message")}
        consumer = None
        if "key-auth" in plugins:
            key = apikey
            if key is None and plugins["key-auth"].get("key_in_query"):
                key = (query.get("apikey") or [None])[0]
            if not key:
                return 401, {"message": "No API key found in request"}
            consumer = next(
                (
                    c
                    for c in document.get("consumers", [])
                    if any(k.get("key") == key for k in c.get("keyauth_credentials", []))
                ),
                None,
            )
            if consumer is None:
                return 401, {"message": "Invalid authentication credentials"}
        if "acl" in plugins:
            groups = {a["group"] for a in (consumer or {}).get("acls", [])}
            if not groups & set(plugins["acl"].get("allow", [])):
                return 403, {"message": "You cannot consume this service"}
        return 200, {
            "upstream": "kong-proxy",
            "service": service["name"],
            "consumer": consumer["username"] if consumer else None,
            "path": path,
        }


@contextmanager
def serve_proxy(proxy: KongProxyStandIn):
    """The proxy stand-in on a free loopback port; yields the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            with proxy.lock:
                proxy.requests.append(("GET", url.path))
                status, body = proxy.answer(
                    self.headers.get("Host", ""), url.path, parse_qs(url.query), self.headers.get("apikey")
                )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
