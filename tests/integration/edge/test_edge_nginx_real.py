"""The rendered vhosts served by a real nginx (Debian's package) on loopback high ports."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import time

import pytest

from nextmavens.edge.nginx import NginxApplier, NginxApplyError, render_nginx
from tests.support.edgesamples import sample_projects, settings
from tests.support.localnginx import (
    LocalNginx,
    closed_without_answer,
    echo_server,
    http_get,
    need,
    self_signed,
    wait_port,
)
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration

STUDIO_USER, STUDIO_PASSWORD = "operator", "studio-test-password"


@pytest.fixture
def edge(tmp_path):
    need("nginx")
    http_port, https_port = free_ports(2)
    with echo_server("kong") as kong_port, echo_server("studio") as studio_port:
        webroot = tmp_path / "webroot"
        (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
        (webroot / ".well-known" / "acme-challenge" / "token123").write_text("token123.thumbprint")
        letsencrypt = tmp_path / "letsencrypt"
        for name in ("shop.api.example.test", "studio.example.test"):
            self_signed(letsencrypt / "live" / name, name)
        sha = base64.b64encode(hashlib.sha1(STUDIO_PASSWORD.encode()).digest()).decode()  # noqa: S324
        htpasswd = tmp_path / "htpasswd"
        htpasswd.write_text(f"{STUDIO_USER}:{{SHA}}{sha}\n")
        config = settings(
            listen_address="127.0.0.1",
            http_port=http_port,
            https_port=https_port,
            kong_proxy=f"127.0.0.1:{kong_port}",
            studio_upstream=f"127.0.0.1:{studio_port}",
            acme_webroot=str(webroot),
            letsencrypt_dir=str(letsencrypt),
            studio_htpasswd=str(htpasswd),
        )
        nginx = LocalNginx(tmp_path / "nginx")
        applier = NginxApplier(nginx.site, tmp_path / "state", nginx.test_cmd, nginx.reload_cmd)
        text = render_nginx(config, sample_projects(), {"shop.api.example.test", "studio.example.test"})
        nginx.site.write_text(text)
        nginx.start()
        try:
            wait_port(http_port)
            assert applier.apply(text) is True
            yield config, nginx, applier, text
        finally:
            nginx.stop()


def https_get(config, host: str, path: str = "/", headers: dict[str, str] | None = None):
    return http_get(config.https_port, host, path, headers=headers, tls=True)


def test_api_host_without_certificate_is_proxied_to_kong_over_http(edge):
    config, *_ = edge
    status, headers, body = http_get(config.http_port, "crm.api.example.test", "/rest/v1/items?select=*")
    assert status == 200
    assert json.loads(body) == {
        "upstream": "kong",
        "host": "crm.api.example.test",
        "path": "/rest/v1/items?select=*",
    }
    assert headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers


def test_custom_domain_goes_to_kong_with_its_host(edge):
    config, *_ = edge
    status, _, body = http_get(config.http_port, "api.crm.acme.test", "/auth/v1/health")
    assert status == 200 and json.loads(body)["host"] == "api.crm.acme.test"


def test_host_with_certificate_redirects_to_https_and_serves_tls(edge):
    config, *_ = edge
    status, headers, _ = http_get(config.http_port, "shop.api.example.test", "/rest/v1/a?b=c")
    assert status == 301
    assert headers["location"] == f"https://shop.api.example.test:{config.https_port}/rest/v1/a?b=c"
    status, headers, body = https_get(config, "shop.api.example.test", "/rest/v1/a")
    assert status == 200 and json.loads(body)["host"] == "shop.api.example.test"
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["x-frame-options"] == "DENY"


def test_acme_path_served_before_and_after_certificate(edge):
    config, *_ = edge
    for host in (
        "shop.api.example.test",
        "crm.api.example.test",
        "api.shop.acme.test",
        "studio.example.test",
    ):
        status, _, body = http_get(config.http_port, host, "/.well-known/acme-challenge/token123")
        assert (status, body) == (200, b"token123.thumbprint"), host
        status, _, _ = http_get(config.http_port, host, "/.well-known/acme-challenge/missing")
        assert status == 404


def test_studio_requires_basic_auth_over_tls(edge):
    config, *_ = edge
    status, headers, _ = https_get(config, "studio.example.test")
    assert status == 401 and "basic" in headers["www-authenticate"].lower()
    auth = base64.b64encode(f"{STUDIO_USER}:{STUDIO_PASSWORD}".encode()).decode()
    status, headers, body = https_get(config, "studio.example.test", "/", {"Authorization": f"Basic {auth}"})
    assert status == 200 and json.loads(body)["upstream"] == "studio"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    status, _, _ = http_get(config.http_port, "studio.example.test", "/")
    assert status == 301


def test_studio_without_certificate_serves_only_acme(tmp_path):
    text = render_nginx(settings(), sample_projects(), set())
    studio = text.split("# Studio")[1].split("# API")[0]
    assert "proxy_pass" not in studio and "return 503" in studio and "acme-challenge" in studio


def test_unknown_host_is_refused(edge):
    config, *_ = edge
    assert closed_without_answer(config.http_port, "unknown.example.org")
    assert closed_without_answer(config.http_port, "127.0.0.1")
    with pytest.raises(ssl.SSLError):
        https_get(config, "unknown.example.org")


def test_broken_config_is_refused_and_the_last_good_keeps_serving(edge):
    config, nginx, applier, good = edge
    assert applier.apply(good) is False  # unchanged: nothing to do
    broken = good.replace("server_tokens off;", "server_tokens off;\nthis_is_not_a_directive on;")
    with pytest.raises(NginxApplyError, match="nginx -t refused"):
        applier.apply(broken)
    assert nginx.site.read_text() == good
    status, _, body = http_get(config.http_port, "crm.api.example.test", "/rest/v1/")
    assert status == 200 and json.loads(body)["upstream"] == "kong"
    # and a later good change still applies through a real reload
    changed = render_nginx(config, sample_projects(), {"shop.api.example.test"})
    assert applier.apply(changed) is True
    # reload is a signal: old workers finish while new ones start; poll (bounded)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, _ = http_get(config.http_port, "studio.example.test", "/")
        if status == 503:  # Studio lost its certificate: only ACME now
            break
        time.sleep(0.1)
    assert status == 503
