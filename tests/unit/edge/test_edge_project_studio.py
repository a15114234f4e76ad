"""Studio for a project as the edge renders it (no nginx needed; tests/integration/dashboard/test_studio.py runs it
in a real nginx): every request to the Studio name through auth_request, the platform's cookie removed, HTTPS only;
the meta gate from the Studios' network only, the connection header replaced; the name claimed and certified."""

from __future__ import annotations

import re

from nextmavens.edge.certs import desired_certificates
from nextmavens.edge.inputs import hostname_problems
from nextmavens.edge.nginx import render_nginx
from tests.support.edgesamples import project, sample_projects, settings

NAME = "studio-projects.example.test"


def studio_settings(**overrides: object):
    values: dict[str, object] = {
        "platform_domain": "platform.example.test",
        "platform_upstream": "127.0.0.1:8100",
        "project_studio_domain": NAME,
        "studio_meta_gate_listen": "172.30.0.1:8102",
        "studio_meta_gate_source": "172.30.0.0/24",
        "postgres_meta_upstream": "127.0.0.1:8080",
    }
    return settings(**{**values, **overrides})


def blocks(text: str) -> list[str]:
    return re.findall(r"^server \{\n.*?^\}", text, flags=re.S | re.M)


def test_nothing_is_rendered_without_the_settings() -> None:
    text = render_nginx(settings(), sample_projects(), set())
    assert "studio-auth" not in text and "meta-auth" not in text and "nm_meta" not in text


def test_the_studio_name_asks_the_service_on_every_request_and_strips_its_cookie() -> None:
    text = render_nginx(studio_settings(), sample_projects(), {NAME})
    [tls] = [b for b in blocks(text) if f"server_name {NAME};" in b and "ssl_certificate" in b]
    root = tls[tls.index("location / {") :]
    assert "auth_request /__nextmavens/studio-auth;" in root
    assert "proxy_pass http://$nm_studio_upstream;" in root and "proxy_set_header Cookie $nm_studio_cookies;" in root
    assert "internal;" in tls[tls.index("location = /__nextmavens/studio-auth") :]
    assert "proxy_pass http://nm_platform/studio/enter$is_args$args;" in tls
    assert "map $http_cookie $nm_studio_cookies" in text


def test_without_a_certificate_the_studio_name_serves_only_acme() -> None:
    text = render_nginx(studio_settings(), sample_projects(), set())
    [plain] = [b for b in blocks(text) if f"server_name {NAME};" in b]
    assert "return 503;" in plain and "auth_request" not in plain and "proxy_pass" not in plain


def test_the_meta_gate_allows_the_studios_network_only_and_replaces_the_connection() -> None:
    text = render_nginx(studio_settings(), sample_projects(), {NAME})
    [gate] = [b for b in blocks(text) if "listen 172.30.0.1:8102;" in b]
    assert "allow 172.30.0.0/24;\n    deny all;" in gate
    root = gate[gate.index("location / {") :]
    assert "auth_request /__nextmavens/meta-auth;" in root and "proxy_pass http://nm_meta;" in root
    assert "proxy_set_header x-connection-encrypted $nm_meta_connection;" in root
    assert 'proxy_set_header pg "";' in root
    assert "server 127.0.0.1:8080;" in text


def test_the_platforms_own_name_refuses_the_gates_check() -> None:
    text = render_nginx(studio_settings(), sample_projects(), {NAME, "platform.example.test"})
    [platform] = [b for b in blocks(text) if "server_name platform.example.test;" in b and "ssl_certificate" in b]
    assert "location ^~ /studio/meta-auth {\n        return 404;" in platform


def test_the_name_is_claimed_and_certified() -> None:
    config = studio_settings()
    assert NAME in {spec.cert_name for spec in desired_certificates(config, sample_projects())}
    clash = project("shop", domains=[NAME])
    assert any(NAME in problem for problem in hostname_problems(config, [clash.manifest]))
