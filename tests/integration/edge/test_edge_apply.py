"""The edge step end to end on this machine: a real nginx, contract stand-ins for Kong, Supavisor and
Realtime, a recording runner in place of docker (no Docker engine here; the sandbox test covers that)."""

from __future__ import annotations

import subprocess

import pytest

from nextmavens.edge.apply import EdgeRefused, EdgeReport, EdgeRuntime, apply_edge, check_edge, remove_project
from nextmavens.edge.certs import CertbotDirs
from nextmavens.edge.clients.kong_admin import KongAdmin
from nextmavens.edge.clients.tenants import RealtimeTenants, SupavisorTenants
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.nginx import NginxApplier
from tests.support.edgehost import REALTIME_SECRET, SUPAVISOR_SECRET, loopback_fields
from tests.support.edgesamples import SHARED_MB, project, sample_projects, settings
from tests.support.localnginx import (
    LocalNginx,
    echo_server,
    get_after_reload,
    need,
    wait_port,
)
from tests.support.standins import KongStandIn, RealtimeStandIn, SupavisorStandIn, serve

INITIAL_SITE = "server {{ listen 127.0.0.1:{port} default_server; return 444; }}\n"


def converge(runtime: EdgeRuntime, projects: list[EdgeProject]) -> EdgeReport:
    """The check, then the edge step: what the commands run, each once."""
    return apply_edge(runtime, projects, check_edge(runtime.settings, [p.manifest for p in projects]))


def elsewhere(name: str) -> list[str]:
    return ["198.51.100.9"]  # no name points here yet: certificates are planned, none requested


@pytest.fixture
def world(tmp_path):
    need("nginx")
    kong, supavisor, realtime = KongStandIn(), SupavisorStandIn(SUPAVISOR_SECRET), RealtimeStandIn(REALTIME_SECRET)
    with (
        serve(kong) as kong_url,
        serve(supavisor) as supavisor_url,
        serve(realtime) as realtime_url,
        echo_server("kong-proxy") as proxy_port,
    ):
        config = settings(**loopback_fields(tmp_path, proxy_port, kong_url, supavisor_url, realtime_url))
        http_port = config.http_port
        nginx = LocalNginx(tmp_path / "nginx")
        nginx.site.write_text(INITIAL_SITE.format(port=http_port))
        nginx.start()
        calls: list[list[str]] = []

        def docker(argv: list[str]) -> subprocess.CompletedProcess[str]:
            calls.append(argv)
            return subprocess.CompletedProcess(argv, 0, "", "")

        runtime = EdgeRuntime(
            settings=config,
            services_dir=tmp_path / "projects",
            run=docker,
            kong=KongAdmin(kong_url),
            nginx=NginxApplier(nginx.site, tmp_path / "state", nginx.test_cmd, nginx.reload_cmd),
            certbot_dirs=CertbotDirs(str(tmp_path / "le"), str(tmp_path / "w"), str(tmp_path / "l")),
            cert_backoff_file=tmp_path / "state" / "backoff.json",
            resolve=elsewhere,
            supavisor=SupavisorTenants(config),
            realtime=RealtimeTenants(config),
        )
        try:
            wait_port(http_port)
            yield runtime, calls, kong, supavisor, realtime, nginx
        finally:
            nginx.stop()


def test_apply_converges_then_second_run_changes_nothing(world):
    runtime, calls, kong, supavisor, realtime, nginx = world
    report = converge(runtime, sample_projects())
    assert report.errors == [], report.errors
    assert [c[3] + " " + c[-1] for c in calls] == ["nm-crm 120", "nm-helpdesk stop", "nm-shop 120"]
    assert "kong: config loaded" in report.done and "nginx: reloaded" in report.done
    assert set(supavisor.tenants) == {"crm", "shop"} == set(realtime.tenants)
    assert any("DNS check failed" in line for line in report.warnings)
    answer = get_after_reload(runtime.settings.http_port, "shop.api.example.test", "/rest/v1/")
    assert answer is not None and answer[0] == 200
    assert (runtime.services_dir / "helpdesk" / "compose.yaml").exists()
    assert not (runtime.services_dir / "gone").exists()

    writes = len(supavisor.writes()) + len(realtime.writes())
    again = converge(runtime, sample_projects())
    assert again.errors == []
    assert "kong: config unchanged" in again.done and "nginx: unchanged" in again.done
    assert len(supavisor.writes()) + len(realtime.writes()) == writes
    assert kong.loads == 1

    # suspending a project stops its containers and removes its pooler tenant; its data stays
    suspended = [p if p.ref != "crm" else project("crm", state="suspended") for p in sample_projects()]
    third = converge(runtime, suspended)
    assert third.errors == []
    assert "crm: supavisor tenant removed (suspended)" in third.done
    assert "crm" not in supavisor.tenants and "crm" in realtime.tenants
    assert calls[-3][3] == "nm-crm" and calls[-3][-1] == "stop"


def test_hostile_input_changes_nothing(world):
    runtime, calls, kong, supavisor, realtime, nginx = world
    projects = [project("one", domains=["same.acme.test"]), project("two", domains=["same.acme.test"])]
    with pytest.raises(EdgeRefused, match="already claimed"):
        converge(runtime, projects)
    assert calls == [] and kong.requests == [] and supavisor.requests == [] and realtime.requests == []
    assert nginx.site.read_text() == INITIAL_SITE.format(port=runtime.settings.http_port)
    assert not runtime.services_dir.exists()


def test_over_budget_changes_nothing_and_says_what_fits(world):
    runtime, calls, kong, *_ = world
    runtime.settings = runtime.settings.model_copy(
        update={"memory_budget_mb": SHARED_MB + 400}
    )
    projects = [project(ref) for ref in ("aaa", "bbb", "ccc")]
    with pytest.raises(EdgeRefused) as info:
        converge(runtime, projects)
    assert "What fits: 2 projects" in str(info.value) and "does not fit: ccc" in str(info.value)
    assert calls == [] and kong.requests == []


def test_docker_failure_is_reported_without_secrets(world):
    runtime, calls, kong, *_ = world
    shop = sample_projects()[0]

    def leaky(argv):
        return subprocess.CompletedProcess(argv, 1, "", f"error: bad env PGRST_JWT_SECRET={shop.secrets.jwt_secret}")

    runtime.run = leaky
    report = converge(runtime, [shop])
    (error,) = report.errors
    assert "docker compose failed (1)" in error and shop.secrets.jwt_secret not in error and "[secret]" in error
    assert kong.loads == 1  # later steps still ran


class RecordingApps:
    """The apps hook (apps/reconcile.py's HostApps) as the edge sees it: what it was asked, what it answered."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def served_names(self, projects):
        self.calls.append("served_names")
        return ["web.shop.test"]

    def reconcile(self, projects):
        self.calls.append("reconcile " + ",".join(p.ref for p in projects if p.manifest.apps))
        return EdgeReport(done=["shop web: nginx updated"])

    def remove_project(self, ref):
        self.calls.append(f"remove_project {ref}")
        return EdgeReport(done=[f"{ref}: docker network nextmavens-apps-{ref} removed"])


def test_apply_reconciles_apps_and_certifies_their_names_and_destroy_removes_them(world):
    runtime, calls, kong, supavisor, realtime, nginx = world
    apps = RecordingApps()
    runtime.apps = apps
    assert converge(runtime, sample_projects()).errors == []
    assert apps.calls == []  # no project declares an app: Docker is not asked about apps
    with_app = [project("shop", apps=[{"name": "web", "domains": ["web.shop.test"]}]), *sample_projects()[1:]]
    report = converge(runtime, with_app)
    assert apps.calls == ["reconcile shop", "served_names"]
    assert "shop web: nginx updated" in report.done
    assert any("certificate web.shop.test not requested: missing; DNS check" in w for w in report.warnings)
    removed = remove_project(runtime, "gone")
    assert apps.calls[-1] == "remove_project gone"
    assert removed.done[0] == "gone: docker network nextmavens-apps-gone removed"


@pytest.mark.parametrize(("issued", "reconciles"), [(["shop.api.example.test"], 1), (["web.shop.test"], 2)])
def test_apps_are_reconciled_again_only_for_an_app_certificate_and_report_each_line_once(
    world, monkeypatch, issued, reconciles
):
    """A project's new certificate rewrites the edge's file, not an app's: the apps' health checks and Docker
    listings are not run again for it. When an app's certificate was issued the second pass's repeated findings
    appear once."""
    import nextmavens.edge.apply as edge_apply
    from nextmavens.edge.certs import CertRunReport

    runtime = world[0]
    gone = "shop web: the container of release 3, which nginx serves, is gone"

    class GoneApps(RecordingApps):
        def reconcile(self, projects):
            self.calls.append("reconcile")
            return EdgeReport(done=["shop web: nginx updated"], errors=[gone])

    apps = GoneApps()
    runtime.apps = apps
    monkeypatch.setattr(edge_apply, "ensure_certificates", lambda *a, **k: CertRunReport([], list(issued), {}))
    with_app = [project("shop", apps=[{"name": "web", "domains": ["web.shop.test"]}]), *sample_projects()[1:]]
    report = converge(runtime, with_app)
    assert apps.calls.count("reconcile") == reconciles
    assert report.errors == [gone]
    assert report.done.count("shop web: nginx updated") == 1
    assert f"certificate {issued[0]}: issued" in report.done
