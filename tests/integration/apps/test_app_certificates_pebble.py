"""Certificates for app domains and previews like a project's custom domains: a real certbot obtains them from a
real local ACME server (Debian's pebble) through the app's own nginx file (its ACME path) on a real nginx, with the
edge's DNS pre-check (a name pointing elsewhere is skipped); reconcile then gives the app HTTPS."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nextmavens.apps.reconcile import reconcile, served_names
from nextmavens.apps.release import Target, deploy
from nextmavens.edge.certs import CertbotDirs, ensure_certificates
from nextmavens.edge.inputs import EdgeProject
from tests.integration.apps.stage import NAME, source
from tests.integration.edge.acme_harness import pebble
from tests.support.edgesamples import manifest, secrets_for
from tests.support.localnginx import http_get, need

pytestmark = pytest.mark.integration
ELSEWHERE = "app.elsewhere.test"


def resolver(name: str) -> list[str]:
    """The app's names point here; the one elsewhere, and the platform's own names (no vhost here), do not."""
    return ["127.0.0.1"] if name.endswith(NAME) else ["198.51.100.7"]


def test_app_domains_and_previews_get_certificates_then_https(release_stage, tmp_path: Path) -> None:
    certbot = need("certbot")
    ctx, target, docker, port, lines, tmp = release_stage
    target = Target(target.org, target.ref, target.app.model_copy(update={"domains": [NAME, ELSEWHERE]}))
    projects = [EdgeProject(manifest("shop", apps=[target.app.model_dump()]), secrets_for("shop"), org="acme")]
    with pebble(tmp_path / "pebble", port) as (directory, ca_bundle):
        ctx.edge = ctx.edge.model_copy(
            update={
                "host_ipv4": "127.0.0.1",
                "acme_webroot": str(tmp_path / "webroot"),
                "letsencrypt_dir": str(tmp_path / "letsencrypt"),
                "acme_server": directory,
            }
        )
        ctx.certificates = None  # the live folder says which names have one
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": "k"})
        deploy(ctx, target, source(tmp, "p1"), "b" * 40, {"API_KEY": "k"}, preview="pr-1")
        names = served_names(ctx.settings.state_dir, projects)
        assert names == [NAME, ELSEWHERE, f"pr-1.{NAME}", f"pr-1.{ELSEWHERE}"]
        dirs = CertbotDirs(str(tmp_path / "letsencrypt"), str(tmp_path / "work"), str(tmp_path / "logs"))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REQUESTS_CA_BUNDLE": str(ca_bundle)}
        backoff = tmp_path / "cert-backoff.json"
        report = ensure_certificates(
            ctx.edge, [], dirs, backoff, resolve=resolver, env=env, certbot=certbot, extra_names=names
        )
        assert report.failed == {}, report.summary()
        assert set(report.issued) == {NAME, f"pr-1.{NAME}"}
        skipped = {d.spec.cert_name: d.reason for d in report.decisions if d.action == "skip"}
        assert {ELSEWHERE, f"pr-1.{ELSEWHERE}"} <= set(skipped) and "not to this host" in skipped[ELSEWHERE]

        done = reconcile(ctx, projects)
        assert done.errors == [] and len(done.done) == 2, done.done  # the app's file and the preview's, with HTTPS
        https_port = ctx.edge.https_port
        for host, version in ((NAME, "v1"), (f"pr-1.{NAME}", "p1")):
            deadline = time.monotonic() + 10
            status, headers = 0, {}
            while time.monotonic() < deadline:
                status, headers, _ = http_get(port, host)
                if status == 308:
                    break
                time.sleep(0.05)
            assert status == 308 and headers["location"] == f"https://{host}:{https_port}/"
            # nginx's reload is a signal: a worker of the config before may answer HTTPS a moment longer (bounded)
            while True:
                status, _, body = http_get(https_port, host, tls=True)
                if (status == 200 and json.loads(body)["version"] == version) or time.monotonic() > deadline + 10:
                    break
                time.sleep(0.05)
            assert status == 200 and json.loads(body)["version"] == version
        assert http_get(port, ELSEWHERE)[0] == 200  # no certificate: still plain HTTP
