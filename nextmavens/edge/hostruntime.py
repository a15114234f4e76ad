"""The edge's I/O on this host, built from its settings file: docker (through the configured argv prefix),
Kong's admin API, nginx, certbot's folders and the tenant APIs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nextmavens.dockerenv import docker_environment
from nextmavens.edge.apply import AppsHook, EdgeRuntime
from nextmavens.edge.certs import CertbotDirs, system_resolver
from nextmavens.edge.clients.evolution import EvolutionApi
from nextmavens.edge.clients.kong_admin import KongAdmin
from nextmavens.edge.clients.tenants import RealtimeTenants, SupavisorTenants
from nextmavens.edge.nginx import NginxApplier
from nextmavens.edge.settingsfile import EdgeConfigError, EdgeHost
from nextmavens.naming import compose_project_name
from nextmavens.runner import Runner, run_command


def _runner(docker: list[str]) -> Runner:
    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        command = [*docker, *argv[1:]] if argv and argv[0] == "docker" else argv
        return run_command(command, timeout=600, env=docker_environment())

    return run


def edge_runtime(host: EdgeHost, apps: AppsHook | None = None) -> EdgeRuntime:
    """`apps`: the deployed apps' hook (nextmavens/apps/reconcile.py's host_apps), given by the command that applies."""
    paths, settings = host.config.paths, host.settings
    run = _runner(host.config.docker)
    return EdgeRuntime(
        settings=settings,
        services_dir=Path(settings.services_dir),
        run=run,
        kong=KongAdmin(settings.kong_admin_url, state_file=paths.state_dir / "kong-hash"),
        nginx=NginxApplier(paths.nginx_site, paths.state_dir, host.config.nginx_test, host.config.nginx_reload),
        certbot_dirs=CertbotDirs(
            settings.letsencrypt_dir, str(paths.certbot_work_dir), str(paths.certbot_logs_dir)
        ),
        cert_backoff_file=paths.state_dir / "certificate-backoff.json",
        resolve=system_resolver,
        supavisor=SupavisorTenants(settings),
        realtime=RealtimeTenants(settings),
        evolution=evolution_api(host),
        issue_certificates=host.config.issue_certificates,
        apps=apps,
    )


def evolution_api(host: EdgeHost) -> EvolutionApi | None:
    """The shared Evolution API, where the host has one and its key; None otherwise."""
    settings = host.settings
    key = settings.evolution_api_key.get_secret_value()
    if not settings.evolution_api_url or not key:
        return None
    return EvolutionApi(settings.evolution_api_url, key)


def running_refs(host: EdgeHost) -> set[str]:
    """Refs whose containers run now (they already hold their memory, so admission counts them first)."""
    listed = _runner(host.config.docker)(["docker", "ps", "--format", '{{.Label "com.docker.compose.project"}}'])
    if listed.returncode != 0:
        raise EdgeConfigError(f"cannot list containers: {listed.stderr.strip()[-300:]}")
    prefix = compose_project_name("")
    return {name.removeprefix(prefix) for name in listed.stdout.split() if name.startswith(prefix)}
