"""`nextmavens apply --edge-config` end to end on this machine: the database on a real PostgreSQL, then the
edge with a real nginx, contract stand-ins of Kong's, Supavisor's and Realtime's admin APIs, and a docker
stand-in that records the commands it gets (no Docker engine runs here; the sandbox host runs real ones)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.edge.harness import LocalNginx, echo_server, free_port, get_after_reload, need, wait_port
from tests.integration.edge.standins import KongStandIn, RealtimeStandIn, SupavisorStandIn, serve
from tests.support.engine import Stage
from tests.support.projects import write_project

SUPAVISOR_SECRET = "platform-supavisor-secret-0123456789abcdef"
REALTIME_SECRET = "platform-realtime-secret-0123456789abcdef"

DOCKER_STANDIN = """#!/bin/sh
# docker stand-in: records each call; `docker ps` lists nothing running.
echo "$*" >> {log}
exit 0
"""


@dataclass
class Edge:
    config: Path
    http_port: int
    docker_log: Path
    kong: KongStandIn
    supavisor: SupavisorStandIn
    realtime: RealtimeStandIn

    def rewrite(self, **settings: object) -> None:
        document = yaml.safe_load(self.config.read_text())
        document["settings"].update(settings)
        self.config.write_text(yaml.safe_dump(document))


def _secret_file(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    path.write_text(value + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


@pytest.fixture
def edge(stage: Stage, tmp_path: Path) -> Iterator[Edge]:
    need("nginx")
    kong, supavisor, realtime = KongStandIn(), SupavisorStandIn(SUPAVISOR_SECRET), RealtimeStandIn(REALTIME_SECRET)
    docker_log = tmp_path / "docker.log"
    docker = tmp_path / "docker-standin"
    docker.write_text(DOCKER_STANDIN.format(log=docker_log))
    docker.chmod(0o755)
    secrets_dir = tmp_path / "platform-secrets"
    secrets_dir.mkdir(mode=0o700)
    http_port = free_port()
    nginx = LocalNginx(tmp_path / "nginx")
    nginx.site.write_text(f"server {{ listen 127.0.0.1:{http_port} default_server; return 444; }}\n")
    with (
        serve(kong) as kong_url,
        serve(supavisor) as supavisor_url,
        serve(realtime) as realtime_url,
        echo_server("kong-proxy") as proxy_port,
    ):
        config = {
            "settings": {
                "api_domain": "api.example.test",
                "studio_domain": "studio.example.test",
                "host_ipv4": "203.0.113.10",
                "listen_address": "127.0.0.1",
                "http_port": http_port,
                "https_port": free_port(),
                "kong_proxy": f"127.0.0.1:{proxy_port}",
                "kong_admin_url": kong_url,
                "supavisor_api_url": supavisor_url,
                "realtime_api_url": realtime_url,
                "acme_webroot": str(tmp_path / "webroot"),
                "letsencrypt_dir": str(tmp_path / "le"),
                "projects_dir": str(tmp_path / "services"),
            },
            "secret_files": {
                "supavisor_api_secret": str(_secret_file(secrets_dir, "supavisor", SUPAVISOR_SECRET)),
                "realtime_api_secret": str(_secret_file(secrets_dir, "realtime", REALTIME_SECRET)),
                "pooler_manager_password": str(_secret_file(secrets_dir, "pgbouncer", "pooler-password-x")),
                "realtime_db_password": str(_secret_file(secrets_dir, "realtime-db", "realtime-db-password-x")),
            },
            "paths": {
                "nginx_site": str(nginx.site),
                "state_dir": str(tmp_path / "edge-state"),
                "certbot_config_dir": str(tmp_path / "le"),
                "certbot_work_dir": str(tmp_path / "le-work"),
                "certbot_logs_dir": str(tmp_path / "le-logs"),
            },
            "issue_certificates": False,  # real certbot against pebble is tested in tests/integration/edge
            "docker": [str(docker)],
            "nginx_test": nginx.test_cmd,
            "nginx_reload": nginx.reload_cmd,
        }
        path = tmp_path / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        nginx.start()
        try:
            wait_port(http_port)
            yield Edge(path, http_port, docker_log, kong, supavisor, realtime)
        finally:
            nginx.stop()


def test_apply_serves_each_project_through_nginx_and_kong_and_converges(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop", domains=["api.shop.acme.test"])
    write_project(stage.projects, "globex", "desk", state="suspended")
    first = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "edge: kong: config loaded" in first.stdout and "edge: nginx: reloaded" in first.stdout

    calls = edge.docker_log.read_text().splitlines()
    assert calls[0].startswith("ps ")
    assert any(c.startswith("compose -p nm-shop ") and " up -d " in c for c in calls)
    assert any(c.startswith("compose -p nm-desk ") and c.endswith(" stop") for c in calls)
    env_files = list((Path(yaml.safe_load(edge.config.read_text())["settings"]["projects_dir"]) / "shop").glob("*.env"))
    assert env_files and all(f.stat().st_mode & 0o077 == 0 for f in env_files)

    answer = get_after_reload(edge.http_port, "shop.api.example.test", "/rest/v1/")
    assert answer is not None and answer[0] == 200
    assert json.loads(answer[2])["upstream"] == "kong-proxy"
    custom = get_after_reload(edge.http_port, "api.shop.acme.test", "/rest/v1/")
    assert custom is not None and custom[0] == 200
    assert set(edge.supavisor.tenants) == {"shop"} and set(edge.realtime.tenants) == {"shop"}
    # Supavisor's manager logs in as the engine's pgbouncer role: the tenant carries that role's password.
    sent = json.dumps(edge.supavisor.tenants)
    assert stage.password("_cluster", "pgbouncer") in sent and "pooler-password-x" not in sent

    keys = json.loads(stage.cli("keys", "show", "acme/shop", "--json", "--edge-config", str(edge.config)).stdout)
    assert keys["api_url"] == "https://shop.api.example.test"
    loaded = json.loads(edge.kong.config or "{}")
    credentials = {c["key"] for consumer in loaded["consumers"] for c in consumer.get("keyauth_credentials", [])}
    assert keys["anon_key"] in credentials and keys["service_role_key"] in credentials
    assert stage.sql("SELECT command, result FROM apply_runs ORDER BY id", dbname="nextmavens")[-1] == (
        "apply edge",
        "ok",
    )

    second = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert second.returncode == 0, second.stderr
    assert "edge: kong: config unchanged" in second.stdout and "edge: nginx: unchanged" in second.stdout
    assert edge.kong.loads == 1


def test_an_edge_that_cannot_serve_the_manifests_stops_apply_before_any_change(stage: Stage, edge: Edge) -> None:
    for index in range(3):
        write_project(stage.projects, "acme", f"app{index}")
    edge.rewrite(memory_budget_mb=3300)
    before = stage.sql("SELECT count(*) FROM pg_roles")
    refused = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert refused.returncode == 1
    assert "nothing was applied" in refused.stderr and "memory" in refused.stderr.lower()
    assert stage.sql("SELECT count(*) FROM pg_roles") == before
    assert edge.kong.loads == 0 and "compose -p" not in edge.docker_log.read_text()

    write_project(stage.projects, "acme", "app0", domains=["studio.example.test"])
    edge.rewrite(memory_budget_mb=8192)
    clash = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert clash.returncode == 1 and "already claimed by the platform (Studio)" in clash.stderr
    assert stage.sql("SELECT count(*) FROM pg_roles") == before


def test_a_loose_platform_secret_file_is_refused(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop")
    document = yaml.safe_load(edge.config.read_text())
    Path(document["secret_files"]["supavisor_api_secret"]).chmod(0o644)
    result = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert result.returncode == 1 and "accessible by group or others" in result.stderr
    assert SUPAVISOR_SECRET not in result.stderr + result.stdout
