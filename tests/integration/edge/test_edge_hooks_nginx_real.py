"""The webhook server served by a real nginx on loopback: the allowed address reaches the service on the webhook
path only; any other address is refused (403) before the service sees it."""

from __future__ import annotations

import json

import pytest

from nextmavens.edge.nginx import render_nginx
from tests.support.edgesamples import sample_projects, settings
from tests.support.localnginx import LocalNginx, echo_server, http_get, need, wait_port
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration


def _serve(source: str):
    http_port, hooks_port = free_ports(2)
    return http_port, hooks_port, settings(
        listen_address="127.0.0.1",
        http_port=http_port,
        platform_domain="platform.example.test",
        evolution_hooks_port=hooks_port,
        evolution_hooks_source=source,
    )


@pytest.mark.parametrize(("source", "allowed"), [("127.0.0.1", True), ("10.254.213.2", False)])
def test_the_webhook_path_from_the_allowed_address_only(tmp_path, source: str, allowed: bool) -> None:
    need("nginx")
    with echo_server("platform") as service_port:
        _, hooks_port, config = _serve(source)
        config = config.model_copy(update={"platform_upstream": f"127.0.0.1:{service_port}"})
        nginx = LocalNginx(tmp_path / "nginx")
        nginx.site.write_text(render_nginx(config, sample_projects(), set()))
        nginx.start()
        try:
            wait_port(hooks_port)
            path = "/hooks/evolution/acme/shop/orders"
            status, _, body = http_get(hooks_port, "host.docker.internal", path)
            if allowed:
                assert status == 200 and json.loads(body)["upstream"] == "platform"
                assert json.loads(body)["path"] == path
            else:
                assert status == 403
            assert http_get(hooks_port, "host.docker.internal", "/v1/me")[0] == 404  # only the webhook path
            assert http_get(hooks_port, "host.docker.internal", "/healthz")[0] == 404
        finally:
            nginx.stop()
