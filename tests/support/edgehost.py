"""An edge on this machine for the command-line tests: a real nginx of the test's own, the admin API
stand-ins of Kong, Supavisor, Realtime and Evolution, a docker stand-in that records its calls, and the settings file
(`--edge-config`) naming them all, with its platform secrets in 0600 files."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.edgesamples import settings_fields
from tests.support.localnginx import LocalNginx, get_after_reload, need, wait_port
from tests.support.ports import free_ports
from tests.support.standins import EvolutionStandIn, KongStandIn, RealtimeStandIn, SupavisorStandIn, serve

SUPAVISOR_SECRET = "platform-supavisor-secret-0123456789abcdef"
REALTIME_SECRET = "platform-realtime-secret-0123456789abcdef"
EVOLUTION_KEY = "platform-evolution-key-0123456789abcdef"
EVOLUTION_HOOKS_URL = "http://host.docker.internal:8100"

DOCKER_STANDIN = """#!/bin/sh
# docker stand-in: records each call; `docker ps` lists nothing running. While {log}.fail exists,
# `docker compose` fails as a broken engine would.
echo "$*" >> {log}
if [ "$1" = compose ] && [ -e {log}.fail ]; then echo "Cannot connect to the Docker daemon" >&2; exit 1; fi
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
    evolution: EvolutionStandIn

    def rewrite(self, **settings: object) -> None:
        document = yaml.safe_load(self.config.read_text())
        document["settings"].update(settings)
        self.config.write_text(yaml.safe_dump(document))

    @property
    def services_dir(self) -> Path:
        return Path(yaml.safe_load(self.config.read_text())["settings"]["services_dir"])

    def break_docker(self, broken: bool = True) -> None:
        flag = self.docker_log.with_name(self.docker_log.name + ".fail")
        if broken:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def get(self, host: str, path: str, apikey: str | None = None, want: int = 200):
        """Through nginx to the Kong proxy, polled (bounded) for `want` while a reload settles."""
        headers = {"apikey": apikey} if apikey else None
        return get_after_reload(self.http_port, host, path, want=want, headers=headers)


def _secret_file(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    path.write_text(value + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


def loopback_fields(
    tmp_path: Path, proxy_port: int, kong_url: str, supavisor_url: str, realtime_url: str
) -> dict[str, Any]:
    """The edge's settings for stand-ins served on this machine, nginx on two free ports of its own."""
    # nginx's ports last: a server bound to port 0 before could have been handed a port taken earlier
    http_port, https_port = free_ports(2)
    return {
        "listen_address": "127.0.0.1",
        "http_port": http_port,
        "https_port": https_port,
        "kong_proxy": f"127.0.0.1:{proxy_port}",
        "kong_admin_url": kong_url,
        "supavisor_api_url": supavisor_url,
        "realtime_api_url": realtime_url,
        "acme_webroot": str(tmp_path / "webroot"),
        "letsencrypt_dir": str(tmp_path / "le"),
    }


def local_edge(tmp_path: Path, proxy: Callable[[KongStandIn], AbstractContextManager[int]]) -> Iterator[Edge]:
    need("nginx")
    kong, supavisor, realtime = KongStandIn(), SupavisorStandIn(SUPAVISOR_SECRET), RealtimeStandIn(REALTIME_SECRET)
    evolution = EvolutionStandIn(EVOLUTION_KEY)
    docker_log = tmp_path / "docker.log"
    docker = tmp_path / "docker-standin"
    docker.write_text(DOCKER_STANDIN.format(log=docker_log))
    docker.chmod(0o755)
    secrets_dir = tmp_path / "platform-secrets"
    secrets_dir.mkdir(mode=0o700)
    nginx = LocalNginx(tmp_path / "nginx")
    with (
        serve(kong) as kong_url,
        serve(supavisor) as supavisor_url,
        serve(realtime) as realtime_url,
        serve(evolution) as evolution_url,
        proxy(kong) as proxy_port,
    ):
        fields = loopback_fields(tmp_path, proxy_port, kong_url, supavisor_url, realtime_url)
        fields.update(evolution_api_url=evolution_url, evolution_hooks_url=EVOLUTION_HOOKS_URL)
        http_port = fields["http_port"]
        nginx.site.write_text(f"server {{ listen 127.0.0.1:{http_port} default_server; return 444; }}\n")
        config = {
            "settings": settings_fields(**fields, services_dir=str(tmp_path / "services")),
            "secret_files": {
                "supavisor_api_secret": str(_secret_file(secrets_dir, "supavisor", SUPAVISOR_SECRET)),
                "realtime_api_secret": str(_secret_file(secrets_dir, "realtime", REALTIME_SECRET)),
                "pooler_manager_password": str(_secret_file(secrets_dir, "pgbouncer", "pooler-password-x")),
                "realtime_db_password": str(_secret_file(secrets_dir, "realtime-db", "realtime-db-password-x")),
                "evolution_api_key": str(_secret_file(secrets_dir, "evolution", EVOLUTION_KEY)),
            },
            "paths": {
                "nginx_site": str(nginx.site),
                "state_dir": str(tmp_path / "edge-state"),
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
            yield Edge(path, http_port, docker_log, kong, supavisor, realtime, evolution)
        finally:
            nginx.stop()
