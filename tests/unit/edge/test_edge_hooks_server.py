"""nginx's server for Evolution's webhooks as the edge renders it: one path to the platform service, one source
address allowed, everything else 404; small bodies and timeouts inside Evolution's own request timeout."""

from __future__ import annotations

import re

from nextmavens.edge.nginx import render_nginx
from tests.support.edgesamples import sample_projects, settings


def hooks_settings(**overrides: object):
    values: dict[str, object] = {
        "platform_domain": "platform.example.test",
        "platform_upstream": "127.0.0.1:8100",
        "evolution_hooks_port": 8101,
        "evolution_hooks_source": "10.254.213.2",
    }
    return settings(**{**values, **overrides})


def hooks_block(text: str) -> str:
    (block,) = [b for b in re.findall(r"^server \{\n.*?^\}", text, flags=re.S | re.M) if "listen 8101;" in b]
    return block


def test_only_the_webhook_path_from_evolution_s_address_reaches_the_service() -> None:
    block = hooks_block(render_nginx(hooks_settings(), sample_projects(), set()))
    assert "    allow 10.254.213.2;\n    deny all;\n" in block
    assert re.findall(r"location (\S+) \{", block) == ["/hooks/evolution/", "/"]
    hooks = block[block.index("location /hooks/evolution/") : block.index("location / {")]
    assert "proxy_pass http://nm_platform;" in hooks
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in hooks
    assert "proxy_connect_timeout 2s;" in hooks and "proxy_read_timeout 8s;" in hooks  # Evolution waits 10 s
    assert block.rstrip().endswith("location / {\n        return 404;\n    }\n}")
    assert "client_max_body_size 1m;" in block and "ssl" not in block


def test_the_service_upstream_is_declared_once_for_both_servers() -> None:
    text = render_nginx(hooks_settings(), sample_projects(), set())
    assert text.count("upstream nm_platform {\n    server 127.0.0.1:8100;") == 1
    # an edge file without the platform's domain (none of the vhost) still serves the webhooks
    alone = render_nginx(hooks_settings(platform_domain=None), sample_projects(), set())
    assert alone.count("upstream nm_platform {") == 1 and "listen 8101;" in alone


def test_no_hooks_server_from_an_edge_file_without_its_settings() -> None:
    text = render_nginx(settings(platform_domain="platform.example.test", platform_upstream="127.0.0.1:8100"),
                        sample_projects(), set())  # fmt: skip
    assert "hooks/evolution" not in text and "8101" not in text


def test_the_allowed_source_must_be_an_address() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        hooks_settings(evolution_hooks_source="10.0.0.2; allow all")
