"""Studio for a project as the deploy renders it from group data: production's edge settings (project_studio_domain
on the Studio name, the meta gate, postgres-meta's loopback port) rendered by the edge and checked by a real
`nginx -t`; the per-project Studio's server takes the Studio name in place of the operator's basic-auth one. The
gate, served, lets the Studios' subnet through only (here: loopback allowed vs. the group data's subnet refused)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nextmavens.edge.nginx import render_nginx
from nextmavens.host.edgeconfig import edge_settings
from nextmavens.host.hostdata import HostData
from tests.support.groupdata import group_configs
from tests.support.localnginx import LocalNginx, echo_server, http_get, need, self_signed, wait_port
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostData:
    return group_configs(tmp_path, monkeypatch)["production"]


def local(config: HostData, tmp_path: Path, with_certificates: bool, **update: object):  # type: ignore[no-untyped-def]
    http_port, https_port, gate_port = free_ports(3)
    settings = edge_settings(config)
    letsencrypt = tmp_path / "letsencrypt"
    names = {settings.studio_domain, str(settings.platform_domain)} if with_certificates else set()
    for name in names:
        self_signed(letsencrypt / "live" / name, name)
    local_settings = settings.model_copy(
        update={
            "listen_address": "127.0.0.1",
            "http_port": http_port,
            "https_port": https_port,
            "letsencrypt_dir": str(letsencrypt),
            "acme_webroot": str(tmp_path / "webroot"),
            "studio_meta_gate_listen": f"127.0.0.1:{gate_port}",
            "default_server": True,
            **update,
        }
    )
    return local_settings, names, gate_port


@pytest.mark.parametrize("with_certificates", [True, False])
def test_productions_studio_name_serves_studio_for_a_project_and_passes_nginx_t(
    production: HostData, tmp_path: Path, with_certificates: bool
) -> None:
    need("nginx")
    settings, names, _ = local(production, tmp_path, with_certificates)
    text = render_nginx(settings, [], names)
    assert settings.project_studio_domain == settings.studio_domain
    assert "auth_basic" not in text  # the operator's basic-auth Studio is replaced on that name
    assert text.count(f"server_name {settings.studio_domain};") == (2 if with_certificates else 1)
    if with_certificates:
        assert "auth_request /__nextmavens/studio-auth;" in text
    assert "auth_request /__nextmavens/meta-auth;" in text
    assert f"allow {production.project_studio_subnet};" in text
    assert f"server 127.0.0.1:{production.loopback_ports.postgres_meta};" in text
    nginx = LocalNginx(tmp_path / "nginx")
    nginx.site.write_text(text)
    checked = subprocess.run(nginx.argv("-t"), capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(("source", "allowed"), [("127.0.0.1/32", True), (None, False)])
def test_the_gate_from_group_data_lets_only_its_source_through(
    production: HostData, tmp_path: Path, source: str | None, allowed: bool
) -> None:
    """With the group data's subnet (10.254.214.0/28) a request from loopback is refused before the service is
    asked; with loopback as the source it reaches the service's check (the echo here answers 200, so postgres-meta
    is reached too)."""
    need("nginx")
    with echo_server("platform") as service_port, echo_server("meta") as meta_port:
        update: dict[str, object] = {
            "platform_upstream": f"127.0.0.1:{service_port}",
            "postgres_meta_upstream": f"127.0.0.1:{meta_port}",
        }
        if source is not None:
            update["studio_meta_gate_source"] = source
        settings, names, gate_port = local(production, tmp_path, True, **update)
        nginx = LocalNginx(tmp_path / "nginx")
        nginx.site.write_text(render_nginx(settings, [], names))
        nginx.start()
        try:
            wait_port(gate_port)
            status, _, _ = http_get(gate_port, "gate", "/tables")
            assert status == (200 if allowed else 403)
        finally:
            nginx.stop()
