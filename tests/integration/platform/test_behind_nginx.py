"""The platform service behind a real nginx with the vhost the edge renders for it: /healthz by its name over TLS,
HTTP sent to HTTPS, nginx's body limit, and the failed-login limit counting the address nginx saw, whatever
X-Forwarded-For the client sends (the service trusts the header from loopback only)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nextmavens.edge.nginx import render_nginx
from tests.integration.platform.harness import PlatformStage, running_service
from tests.support.edgesamples import settings
from tests.support.localnginx import LocalNginx, http_get, need, self_signed, wait_port
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration

NAME = "platform.example.test"
BURST = 3


@pytest.fixture(scope="module")
def behind_nginx(platform_stage: PlatformStage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    need("nginx")
    base = tmp_path_factory.mktemp("platform-nginx")
    limited = platform_stage.settings(auth_burst=BURST, auth_refill_s=3600.0)
    with running_service(limited) as url:
        http_port, https_port = free_ports(2)
        letsencrypt = base / "letsencrypt"
        self_signed(letsencrypt / "live" / NAME, NAME)
        config = settings(
            listen_address="127.0.0.1",
            http_port=http_port,
            https_port=https_port,
            letsencrypt_dir=str(letsencrypt),
            acme_webroot=str(base / "webroot"),
            platform_domain=NAME,
            platform_upstream=url.removeprefix("http://"),
        )
        nginx = LocalNginx(base / "nginx")
        nginx.site.write_text(render_nginx(config, [], {NAME}))
        nginx.start()
        try:
            wait_port(https_port)
            yield {"http": http_port, "https": https_port, "service": url}
        finally:
            nginx.stop()


def https(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=NAME)
    try:
        conn.request(method, path, body=body or None, headers={"Host": NAME, **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_healthz_by_its_name_over_tls_and_http_goes_to_https(behind_nginx: dict[str, Any]) -> None:
    status, body = https(behind_nginx["https"], "GET", "/healthz", {})
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, _ = http_get(behind_nginx["http"], NAME, "/v1/me")
    assert status == 301 and headers["location"] == f"https://{NAME}:{behind_nginx['https']}/v1/me"


def test_nginx_refuses_a_body_above_the_services_limit(behind_nginx: dict[str, Any]) -> None:
    status, _ = https(
        behind_nginx["https"], "POST", "/v1/projects", {"Content-Type": "application/json"}, b"x" * (1024 * 1024 + 1)
    )
    assert status == 413


def test_the_login_limit_counts_the_address_nginx_saw_not_the_clients_header(behind_nginx: dict[str, Any]) -> None:
    bad = {"Authorization": "Bearer nmp_" + "x" * 43}
    statuses = [
        https(behind_nginx["https"], "GET", "/v1/me", {**bad, "X-Forwarded-For": f"198.51.100.{n}"})[0]
        for n in range(BURST + 2)
    ]
    # a new claimed address each time, yet one bucket: the address nginx saw (this test's, 127.0.0.1)
    assert statuses == [401] * BURST + [429, 429]
    # the claimed addresses were never charged: asked directly from loopback (a trusted proxy), one still gets 401
    direct = httpx.get(f"{behind_nginx['service']}/v1/me", headers={**bad, "X-Forwarded-For": "198.51.100.1"})
    assert direct.status_code == 401
    # and the service sees the real address behind nginx for the others too
    assert https(behind_nginx["https"], "GET", "/healthz", {"X-Forwarded-For": "198.51.100.2"})[0] == 200
