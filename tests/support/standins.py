"""STAND-INS (not the real programs) for the admin APIs that cannot run here, served on 127.0.0.1 for the tests.

There is one stand-in implementation: the sandbox image's (devkit/sandbox/images/standin/standin.py). This
module loads that file and serves its Supavisor/Realtime tenant APIs and Kong admin API in this process, adding
only what tests need: a request log, and a Kong refusal that quotes a credential (Kong's flattened errors can
quote entity values), so the tests prove the client never repeats what Kong says.

- Supavisor / Realtime: GET/PUT/DELETE /api/tenants/:external_id behind an HS256 bearer JWT; views omit passwords.
- Evolution API 2.3.7: instance create/fetch/state/restart/logout/delete, webhook and settings set/find, behind
  the `apikey` header, with 2.3.7's refusals and its HTTP 200 `{"error": true}` answers.
- Kong 2.8.1 DB-less admin API: POST /config, check_hash=1 -> 304, refusals with code 14 (format version,
  plugins not in KONG_PLUGINS, unknown plugin fields: the pinned facts), GET /status configuration_hash.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nextmavens.edge.kong import KONG_PLUGINS as RENDERED_KONG_PLUGINS
from tests.support.loopback import QuietHandler, serving
from tests.support.repo import REPO

STANDIN_FILE = REPO / "devkit/sandbox/images/standin/standin.py"


def _load_standin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nextmavens_standin_image", STANDIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMAGE = _load_standin()  # the image's stand-in; importing it starts nothing

# KONG_PLUGINS as the shared compose renders it (nextmavens.host.render.template_context)
COMPOSE_KONG_PLUGINS = ",".join(RENDERED_KONG_PLUGINS)
# Supabase's self-hosted compose (docker/docker-compose.yml): no rate-limiting
SUPABASE_KONG_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction"


class StandIn:
    """One stand-in served by `serve`: `handle` answers, `requests` records (method, path)."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def authorised(self, header: str | None) -> bool:
        return self.secret is None or bool(IMAGE.jwt_valid(header, self.secret))

    def handle(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def respond(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: Any) -> tuple[int, Any]:
        """`handle`, for stand-ins whose API authorises by a header of its own (Evolution's `apikey`)."""
        return self.handle(method, path, query, raw)


class _TenantsStandIn(StandIn):
    kind = ""

    def __init__(self, secret: str | None = None) -> None:
        super().__init__(secret)
        self.api = IMAGE.Tenants(self.kind)

    @property
    def tenants(self) -> dict[str, dict[str, Any]]:
        return self.api.tenants  # type: ignore[no-any-return]

    def handle(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return self.api.handle(method, path, body)  # type: ignore[no-any-return]


class SupavisorStandIn(_TenantsStandIn):
    kind = "supavisor"


class RealtimeStandIn(_TenantsStandIn):
    kind = "realtime"


class EvolutionStandIn(StandIn):
    """Evolution API 2.3.7's instance, webhook and settings routes behind the `apikey` header. STAND-IN."""

    def __init__(self, api_key: str, client_name: str = "nextmavens", state_file: str | None = None) -> None:
        super().__init__(None)
        self.api = IMAGE.Evolution(api_key, client_name, state_file)

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return self.api.instances  # type: ignore[no-any-return]

    def respond(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: Any) -> tuple[int, Any]:
        return self.api.handle(method, path, query, headers, raw)  # type: ignore[no-any-return]

    def add_instance(self, name: str, state: str = "close", **fields: Any) -> None:
        """An instance as if created earlier (a row as the stand-in's create stores it), in `state`; `fields`
        override the row's, e.g. ownerJid and profileName for a paired one."""
        self.api.instances[name] = {
            "id": f"id-{name}", "name": name, "connectionStatus": state, "ownerJid": None, "profileName": None,
            "integration": "WHATSAPP-BAILEYS", "number": None, "token": f"token-of-{name}-0123456789",
            "clientName": self.api.client_name, "Setting": {}, "webhook": None, **fields,
        }  # fmt: skip


class KongStandIn(StandIn):
    """Kong 2.8.1 DB-less, as far as its admin API and declarative-config refusals go. STAND-IN."""

    def __init__(self, kong_plugins: str | None = COMPOSE_KONG_PLUGINS) -> None:
        super().__init__(None)
        self.admin = IMAGE.KongAdmin(kong_plugins)  # KONG_PLUGINS as the pinned Kong reads it

    @property
    def config(self) -> str | None:
        return self.admin.text  # type: ignore[no-any-return]

    @property
    def hash(self) -> str:
        return self.admin.hash  # type: ignore[no-any-return]

    @property
    def loads(self) -> int:
        return self.admin.loads  # type: ignore[no-any-return]

    @property
    def busy(self) -> int:
        return self.admin.busy  # type: ignore[no-any-return]

    @busy.setter
    def busy(self, value: int) -> None:
        self.admin.busy = value

    def handle(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        status, body = self.admin.handle(method, path, query, raw)
        if status == 400 and method == "POST":
            try:
                document = json.loads(json.loads(raw)["config"])
                key = next(k["key"] for c in document.get("consumers", []) for k in c.get("keyauth_credentials", []))
            except (ValueError, KeyError, TypeError, StopIteration):
                key = ""
            body = {**body, "message": f"{body['message']}; first key {key}"}
            body["fields"] = {"services": [{"plugins": [{"name": body["message"]}]}]}
        return status, body


@contextmanager
def serve(standin: StandIn) -> Iterator[str]:
    """The stand-in's admin API on a free loopback port; yields its base URL."""

    class Handler(QuietHandler):
        def _run(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with standin.lock:
                standin.requests.append((method, url.path))
            if not standin.authorised(self.headers.get("Authorization")):
                status, body = 401, {"message": "unauthorized"}
            else:
                status, body = standin.respond(method, url.path, parse_qs(url.query), raw, self.headers)
            payload = b"" if body is None or status in (204, 304) else json.dumps(body).encode()
            self.reply(status, payload, "application/json" if payload else None)

        def do_GET(self) -> None:  # noqa: N802
            self._run("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._run("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._run("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._run("DELETE")

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}"


class KongProxyStandIn(StandIn):
    """Kong's proxy side, answering from the config the admin stand-in holds, with the image's own router and
    auth plugins (`kong_admit`: the route matched by host and longest path, request-termination, key-auth's 401,
    acl's 403). What the image would forward is answered here 200, with the route and consumer it reached
    (the image forwards to Docker service names, which do not exist in these tests). STAND-IN."""

    def __init__(self, admin: KongStandIn) -> None:
        super().__init__(None)
        self.admin = admin

    def answer(self, method: str, host: str, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, Any]:
        compiled = self.admin.admin.compiled
        host = host.split(":")[0].lower()
        route, consumer, _extra, answer = IMAGE.kong_admit(compiled, method, host, path, query, headers)
        if answer is not None:
            return int(answer[0]), answer[1]
        return 200, {"upstream": "kong-proxy", "route": route["name"], "consumer": consumer, "path": path}


def serve_proxy(proxy: KongProxyStandIn) -> AbstractContextManager[int]:
    """The proxy stand-in on a free loopback port; yields the port."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            with proxy.lock:
                proxy.requests.append(("GET", url.path))
                status, body = proxy.answer(
                    "GET", self.headers.get("Host", ""), url.path, parse_qs(url.query), self.headers
                )
            self.reply_json(status, body)

    return serving(Handler)


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Until `process` listens on 127.0.0.1:port (15 s at most); an error naming `what` when it exits first."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}") from None
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


@contextmanager
def studio_standin_process(port: int, env: dict[str, str], name: str) -> Iterator[subprocess.Popen[bytes]]:
    """The image's stand-in as a process in the Studio role (STANDIN_ROLE=studio), on 127.0.0.1:port with `env` (a
    project's Studio environment); ended by its pid."""
    environment = {
        **os.environ,
        **env,
        "STANDIN_ROLE": "studio",
        "STANDIN_NAME": name,
        "STANDIN_BIND": "127.0.0.1",
        "STANDIN_PORTS": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, str(STANDIN_FILE)], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port, process, f"the Studio stand-in {name}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
