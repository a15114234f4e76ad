"""The platform service's vhost as the edge renders it (no nginx needed): HTTPS to the service once its
certificate exists, before that only ACME and /healthz in clear; X-Forwarded-For is the address nginx saw; bodies
capped at the service's limit; log streams unbuffered. Its name is claimed like Studio's and gets a certificate."""

from __future__ import annotations

import re

from nextmavens.edge.certs import desired_certificates
from nextmavens.edge.inputs import hostname_problems
from nextmavens.edge.nginx import render_nginx
from tests.support.edgesamples import project, sample_projects, settings

NAME = "platform.example.test"


def platform_settings(**overrides: object):
    return settings(platform_domain=NAME, platform_upstream="127.0.0.1:8100", **overrides)


def servers_for(text: str, name: str) -> list[str]:
    """The server blocks naming `name` (each from `server {` to its closing brace at the line's start)."""
    blocks = re.findall(r"^server \{\n.*?^\}", text, flags=re.S | re.M)
    return [block for block in blocks if f"server_name {name};" in block]


def test_no_platform_vhost_without_its_settings() -> None:
    text = render_nginx(settings(), sample_projects(), set())
    assert "nm_platform" not in text and NAME not in text


def test_with_its_certificate_it_is_https_to_the_service() -> None:
    text = render_nginx(platform_settings(), sample_projects(), {NAME})
    assert "upstream nm_platform {\n    server 127.0.0.1:8100;" in text
    plain, tls = servers_for(text, NAME)
    assert "return 301 https://$host$request_uri;" in plain and "proxy_pass" not in plain
    assert f"ssl_certificate /etc/letsencrypt/live/{NAME}/fullchain.pem;" in tls
    assert "client_max_body_size 1m;" in tls and "Strict-Transport-Security" in tls
    # the client's own X-Forwarded-For never reaches the service: nginx sets the address it saw
    assert tls.count("proxy_set_header X-Forwarded-For $remote_addr;") == 3
    assert "$proxy_add_x_forwarded_for" not in tls
    assert "proxy_read_timeout 960s;" in tls  # a write waits for its apply
    logs = tls[tls.index("location ~ ^/v1/projects/[^/]+/[^/]+/logs") :]
    assert "proxy_buffering off;" in logs and "proxy_read_timeout 3600s;" in logs
    deploys = tls[tls.index("location ~ ^/v1/projects/[^/]+/[^/]+/apps/[^/]+/deploys$ {") :]
    assert "client_max_body_size 50m;" in deploys and "proxy_read_timeout 1800s;" in deploys  # an app's archive
    assert tls.count("proxy_buffering off;") == 2  # only the log and deploy streams


def test_without_its_certificate_only_acme_and_healthz_in_clear() -> None:
    text = render_nginx(platform_settings(), sample_projects(), set())
    (plain,) = servers_for(text, NAME)
    assert "listen 443" not in plain and "/.well-known/acme-challenge/" in plain
    assert "location = /healthz {\n        proxy_pass http://nm_platform;" in plain
    assert plain.rstrip().endswith("location / {\n        return 503;\n    }\n}")


def test_its_name_gets_a_certificate_and_no_project_may_claim_it() -> None:
    config = platform_settings()
    assert NAME in {spec.cert_name for spec in desired_certificates(config, sample_projects())}
    clash = project("shop", domains=[NAME]).manifest
    problems = hostname_problems(config, [clash])
    assert problems == [f"shop: host name {NAME!r} is already claimed by the platform service"]
