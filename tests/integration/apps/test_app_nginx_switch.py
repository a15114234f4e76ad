"""The app's nginx file against a real nginx: `nginx -t` accepts it, it routes the app's names (HTTP, and HTTPS
once a certificate exists), and switching the upstream under a load loop in a second process fails no request."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nextmavens.apps.upstream import conf_filename, render_app_nginx, upstream_name
from nextmavens.edge.nginx import NginxApplier, NginxApplyError, remove_managed
from tests.support import loadloop
from tests.support.edgesamples import settings
from tests.support.localnginx import LocalNginx, echo_server, http_get, need, self_signed, wait_port
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(tmp_path: Path):
    need("nginx")
    http_port, https_port = free_ports(2)
    letsencrypt = tmp_path / "letsencrypt"
    self_signed(letsencrypt / "live" / "secure.acme.test", "secure.acme.test")
    config = settings(
        listen_address="127.0.0.1",
        http_port=http_port,
        https_port=https_port,
        acme_webroot=str(tmp_path / "webroot"),
        letsencrypt_dir=str(letsencrypt),
    )
    nginx = LocalNginx(tmp_path / "nginx")
    site = nginx.prefix / "sites" / conf_filename("shop", "web")
    applier = NginxApplier(site, tmp_path / "state", nginx.test_cmd, nginx.reload_cmd)
    with echo_server("v1") as v1, echo_server("v2") as v2:
        names = ["web.acme.test", "secure.acme.test"]
        site.write_text(render_app_nginx(config, "shop", "web", names, v1, 1, {"secure.acme.test"}))
        nginx.start()
        try:
            wait_port(http_port)
            yield config, applier, v1, v2
        finally:
            nginx.stop()


def served_by(port: int, host: str, tls: bool = False) -> str:
    status, _, body = http_get(port, host, tls=tls)
    assert status == 200, (status, body)
    return json.loads(body)["upstream"]


def serves_soon(port: int, host: str, want: str) -> bool:
    """A reload is a signal: the workers of the config before may answer a moment longer (bounded poll)."""
    deadline = time.monotonic() + 10
    while served_by(port, host) != want:
        assert time.monotonic() < deadline, f"{host} never served {want}"
        time.sleep(0.05)
    return True


def test_the_apps_names_are_routed_and_https_once_certified(stage) -> None:
    config, applier, v1, _ = stage
    assert served_by(config.http_port, "web.acme.test") == "v1"
    status, headers, _ = http_get(config.http_port, "secure.acme.test", "/a?b=1")
    assert status == 308 and headers["location"] == f"https://secure.acme.test:{config.https_port}/a?b=1"
    assert served_by(config.https_port, "secure.acme.test", tls=True) == "v1"
    text = render_app_nginx(config, "shop", "web", ["web.acme.test"], v1, 1)
    assert f"upstream {upstream_name('shop', 'web')} {{\n    server 127.0.0.1:{v1};" in text


def test_switching_under_load_fails_no_request(stage, tmp_path: Path) -> None:
    config, applier, v1, v2 = stage
    stop = tmp_path / "stop"
    loop = loadloop.start(config.http_port, "web.acme.test", "/", stop, max_s=60)
    try:
        time.sleep(0.5)
        for release, port in ((2, v2), (3, v1), (4, v2)):
            assert applier.apply(render_app_nginx(config, "shop", "web", ["web.acme.test"], port, release)) is True
            time.sleep(0.4)
    finally:
        result = loadloop.finish(loop, stop)
    assert result["failed"] == 0, result
    assert result["ok"] > 20, result
    assert served_by(config.http_port, "web.acme.test") == "v2"


def test_a_refused_config_keeps_the_previous_upstream(stage) -> None:
    config, applier, v1, v2 = stage
    assert applier.apply(render_app_nginx(config, "shop", "web", ["web.acme.test"], v1, 1)) is True
    bad = render_app_nginx(config, "shop", "web", ["web.acme.test"], v2, 2).replace("keepalive 16;", "keepalive x;")
    with pytest.raises(NginxApplyError, match="nginx -t refused"):
        applier.apply(bad)
    assert served_by(config.http_port, "web.acme.test") == "v1"


def test_files_removed_together_are_put_back_together_when_nginx_refuses(stage) -> None:
    """remove_managed (a destroyed project's app files): one `nginx -t`; refused, every file is back and serving."""
    config, applier, v1, v2 = stage
    assert applier.apply(render_app_nginx(config, "shop", "web", ["web.acme.test"], v1, 1)) is True
    preview = replace(applier, conf_path=applier.conf_path.with_name(conf_filename("shop", "web", "pr-1")))
    assert preview.apply(render_app_nginx(config, "shop", "web", ["web.acme.test"], v2, 2, preview="pr-1")) is True
    # a file outside the removal that uses the app's upstream: nginx -t refuses the config without it
    user = applier.conf_path.with_name("zz-user.conf")
    user.write_text(
        f"server {{ listen 127.0.0.1:{config.http_port}; server_name user.acme.test; "
        f"location / {{ proxy_pass http://{upstream_name('shop', 'web')}; }} }}\n"
    )
    with pytest.raises(NginxApplyError, match=r"refused the config without nextmavens-app-shop--web\.conf, "):
        remove_managed([applier, preview])
    assert applier.conf_path.exists() and preview.conf_path.exists()
    assert served_by(config.http_port, "web.acme.test") == "v1"
    assert serves_soon(config.http_port, "pr-1.web.acme.test", "v2")
    user.unlink()
    assert remove_managed([applier, preview]) == [applier.conf_path, preview.conf_path]
    assert not applier.conf_path.exists() and not preview.conf_path.exists()
    assert not applier.last_good.exists() and not preview.last_good.exists()
    assert remove_managed([applier, preview]) == []
