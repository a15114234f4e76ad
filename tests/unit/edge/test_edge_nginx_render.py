"""Rendered nginx vhosts: golden file and the rules each vhost follows (no nginx needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nextmavens.edge.inputs import EdgeInputError
from nextmavens.edge.nginx import nginx_vhosts, render_nginx
from tests.support.edgesamples import project, sample_projects, settings

GOLDEN = Path(__file__).parent / "golden" / "nginx-edge.conf"
CERTS = {"shop.api.example.test", "studio.example.test", "api.shop.acme.test"}


def test_golden_nginx_config():
    text = render_nginx(settings(), sample_projects(), CERTS)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_absent_project_gets_no_vhost_and_suspended_keeps_one():
    names = {n for v in nginx_vhosts(settings(), sample_projects(), CERTS) for n in v.server_names}
    assert "*.api.example.test" in names
    assert not any("gone" in n for n in names)


def test_wildcard_certificate_serves_every_project_name():
    config = settings(wildcard_dns01=True)
    text = render_nginx(config, sample_projects(), {"api.example.test"})
    assert "server_name *.api.example.test;" in text
    assert "ssl_certificate /etc/letsencrypt/live/api.example.test/fullchain.pem;" in text
    assert "server_name shop.api.example.test;" not in text


def test_redirect_keeps_non_default_https_port():
    text = render_nginx(settings(https_port=8443), sample_projects(), CERTS)
    assert "return 301 https://$host:8443$request_uri;" in text
    assert "return 301 https://$host$request_uri;" in render_nginx(settings(), sample_projects(), CERTS)


def test_body_size_limit_from_settings():
    assert "client_max_body_size 7m;" in render_nginx(settings(client_max_body_size_mb=7), sample_projects())


def test_hostile_domains_are_refused_before_rendering():
    with pytest.raises(EdgeInputError):
        render_nginx(settings(), [project("one", domains=["x.acme.test"]), project("two", domains=["x.acme.test"])])


def test_storage_projects_accept_uploads_up_to_their_file_size_limit():
    projects = [project("big", storage={"enabled": True, "file_size_limit_mb": 200}), project("small")]
    vhosts = {v.server_names[0]: v for v in nginx_vhosts(settings(), projects, {"big.api.example.test"})}
    assert vhosts["big.api.example.test"].body_mb == 201
    assert vhosts["*.api.example.test"].body_mb == 201
    vhosts = {v.server_names[0]: v for v in nginx_vhosts(settings(), [project("small")], set())}
    assert vhosts["*.api.example.test"].body_mb == 50
