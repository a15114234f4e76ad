"""The `release_stage` of the release flow's stand-in tests: a real nginx on free loopback ports, a stand-in docker
engine (tests/support/standindocker.py), a Context on them and one app `web` of acme/shop at web.acme.test."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.apps.release import Context, Target
from nextmavens.edge.appsettings import AppDeploySettings, AppImages
from nextmavens.manifest.models import App
from tests.integration.apps.stage import NAME
from tests.support.edgesamples import settings
from tests.support.localnginx import LocalNginx, need, wait_port
from tests.support.ports import free_ports
from tests.support.standindocker import StandinDocker


@pytest.fixture
def release_stage(tmp_path: Path):
    need("nginx")
    http_port, https_port = free_ports(2)
    nginx = LocalNginx(tmp_path / "nginx")
    (nginx.prefix / "sites" / "placeholder.conf").write_text(
        f"server {{ listen 127.0.0.1:{http_port} default_server; return 444; }}\n"
    )
    nginx.start()
    wait_port(http_port)
    docker = StandinDocker(tmp_path / "images")
    docker.root.mkdir()
    lines: list[str] = []
    ctx = Context(
        settings=AppDeploySettings(
            images=AppImages(node="n:1", python="p:1", static="s:1"),
            health_timeout_s=5,
            health_interval_s=0.1,
            health_request_timeout_s=1,
            drain_s=0.5,
            build_memory_mb=512,
            lock_timeout_s=1,
            pids_limit=512,
            state_dir=tmp_path / "state",
            secrets_dir=tmp_path / "secrets",
            nginx_dir=nginx.prefix / "sites",
        ),
        edge=settings(listen_address="127.0.0.1", http_port=http_port, https_port=https_port),
        docker=docker,
        nginx_test=tuple(nginx.test_cmd),
        nginx_reload=tuple(nginx.reload_cmd),
        say=lines.append,
        certificates=(),
    )
    app = App(name="web", domains=[NAME], health_path="/health", retain=2, secrets=["API_KEY"], env={"MODE": "x"})
    try:
        yield ctx, Target("acme", "shop", app), docker, http_port, lines, tmp_path
    finally:
        docker.close()
        nginx.stop()
