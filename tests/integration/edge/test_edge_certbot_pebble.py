"""A real certbot obtains certificates from a real local ACME server (Debian's pebble) through the rendered
webroot vhost served by a real nginx; a second run requests nothing; a name failing DNS is skipped."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import time

import pytest

from nextmavens.edge.certs import (
    BackoffState,
    CertbotDirs,
    CertSpec,
    certbot_command,
    ensure_certificates,
    observe_certificates,
    plan_certificates,
)
from nextmavens.edge.nginx import NginxApplier, render_nginx
from tests.integration.edge.acme_harness import pebble
from tests.support.edgesamples import project, settings
from tests.support.localnginx import LocalNginx, echo_server, http_get, need, wait_port
from tests.support.ports import free_ports

pytestmark = pytest.mark.integration

GOOD_NAMES = {"studio.example.test", "shop.api.example.test", "www.shop.test"}


def resolver(name: str) -> list[str]:
    """The test's DNS view: everything points at this host except one misconfigured custom domain."""
    if name == "wrong.elsewhere.test":
        return ["198.51.100.7"]
    if name == "nxdomain.shop.test":
        raise OSError("no such name")
    return ["127.0.0.1"]


def test_certbot_issues_through_webroot_vhost_and_second_run_requests_nothing(tmp_path):
    certbot = need("certbot")
    need("nginx")
    http_port, https_port = free_ports(2)
    projects = [
        project("shop", domains=["www.shop.test", "wrong.elsewhere.test", "nxdomain.shop.test"]),
    ]
    with echo_server("kong") as kong_port, pebble(tmp_path / "pebble", http_port) as (directory, ca_bundle):
        config = settings(
            host_ipv4="127.0.0.1",
            listen_address="127.0.0.1",
            http_port=http_port,
            https_port=https_port,
            kong_proxy=f"127.0.0.1:{kong_port}",
            acme_webroot=str(tmp_path / "webroot"),
            letsencrypt_dir=str(tmp_path / "letsencrypt"),
            acme_server=directory,
        )
        dirs = CertbotDirs(str(tmp_path / "letsencrypt"), str(tmp_path / "work"), str(tmp_path / "logs"))
        (tmp_path / "webroot").mkdir()
        nginx = LocalNginx(tmp_path / "nginx")
        applier = NginxApplier(nginx.site, tmp_path / "state", nginx.test_cmd, nginx.reload_cmd)
        nginx.site.write_text(render_nginx(config, projects, set()))
        nginx.start()
        try:
            wait_port(http_port)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REQUESTS_CA_BUNDLE": str(ca_bundle)}
            backoff = tmp_path / "state" / "cert-backoff.json"
            report = ensure_certificates(config, projects, dirs, backoff, resolve=resolver, env=env, certbot=certbot)
            assert report.failed == {}, report.summary()
            assert set(report.issued) == GOOD_NAMES
            skipped = {d.spec.cert_name: d.reason for d in report.decisions if d.action == "skip"}
            assert "not to this host" in skipped["wrong.elsewhere.test"]
            assert "does not resolve" in skipped["nxdomain.shop.test"]
            observed = observe_certificates(dirs.config_dir)
            assert {n for n in observed} == GOOD_NAMES
            assert observed["www.shop.test"] == frozenset({"www.shop.test"})

            # The second run requests nothing (a runner that fails loudly if called).
            def must_not_run(argv):
                raise AssertionError(f"certbot called again: {argv[:2]}")

            again = ensure_certificates(config, projects, dirs, backoff, resolve=resolver, runner=must_not_run, env=env)
            assert again.requested == []
            assert {d.spec.cert_name for d in again.decisions if d.action == "keep"} == GOOD_NAMES

            # With the certificates, the vhosts switch to HTTPS: redirect, then TLS with pebble's certificate.
            assert applier.apply(render_nginx(config, projects, set(observed)))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status, headers, _ = http_get(http_port, "www.shop.test", "/rest/v1/")
                if status == 301:
                    break
                time.sleep(0.1)
            assert status == 301 and headers["location"].startswith("https://www.shop.test:")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", https_port, context=context, timeout=5)
            conn.sock = context.wrap_socket(
                __import__("socket").create_connection(("127.0.0.1", https_port), timeout=5),
                server_hostname="www.shop.test",
            )
            peer = conn.sock.getpeercert(binary_form=True)
            conn.request("GET", "/rest/v1/", headers={"Host": "www.shop.test"})
            assert conn.getresponse().status == 200
            conn.close()
            live = (tmp_path / "letsencrypt" / "live" / "www.shop.test" / "cert.pem").read_bytes()
            assert ssl.DER_cert_to_PEM_cert(peer).strip() == live.decode().strip()

            # A lineage whose name list changed is planned again, and certbot replaces it non-interactively.
            wider = CertSpec("www.shop.test", ("www.shop.test", "shop.api.example.test"))
            (decision,) = plan_certificates(config, [wider], observed, BackoffState(), resolver, time.time())
            assert (decision.action, decision.reason) == ("request", "name list changed")
            result = subprocess.run(  # noqa: S603
                certbot_command(config, wider, dirs, certbot),
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr[-800:]
            assert observe_certificates(dirs.config_dir)["www.shop.test"] == frozenset(wider.names)
        finally:
            nginx.stop()
