"""The edge as `nextmavens apply` runs it on the host: a settings file, the runtime built from it, a
check before the database changes, and the edge step after them.

The settings file (`--edge-config`, rendered by the host deploy) holds EdgeSettings' plain fields and the
paths of the files holding its platform secrets; the secrets themselves never sit in that file.
"""

from __future__ import annotations

import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from nextmavens.dockerenv import docker_environment
from nextmavens.edge.apply import EdgeReport, EdgeRuntime, apply_edge, precheck_edge
from nextmavens.edge.certs import CertbotDirs, observe_certificates, system_resolver
from nextmavens.edge.clients.kong_admin import KongAdmin
from nextmavens.edge.clients.tenants import RealtimeTenants, SupavisorTenants
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.nginx import NginxApplier
from nextmavens.edge.services import compose_project_name
from nextmavens.edge.settings import EdgeSettings
from nextmavens.engine.desired import CLUSTER_SCOPE
from nextmavens.engine.secretstore import SecretStore
from nextmavens.manifest.loader import ManifestSet
from nextmavens.naming import POOLER_ROLE

SecretField = Literal["supavisor_api_secret", "realtime_api_secret", "pooler_manager_password", "realtime_db_password"]


class EdgeConfigError(Exception):
    pass


class EdgePaths(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nginx_site: Path = Path("/etc/nginx/conf.d/nextmavens-edge.conf")  # the one file the edge writes
    state_dir: Path = Path("/var/lib/nextmavens/edge")  # last good nginx config, Kong hash, cert back-off
    certbot_config_dir: Path = Path("/etc/letsencrypt")
    certbot_work_dir: Path = Path("/var/lib/letsencrypt")
    certbot_logs_dir: Path = Path("/var/log/letsencrypt")


class EdgeHostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: EdgeSettings = Field(description="Without the platform secrets: secret_files names their files")
    secret_files: dict[SecretField, Path] = Field(default_factory=dict)
    paths: EdgePaths = Field(default_factory=EdgePaths)
    issue_certificates: bool = True
    docker: list[str] = Field(default_factory=lambda: ["docker"], description="argv prefix replacing `docker`")
    nginx_test: list[str] = Field(default_factory=lambda: ["nginx", "-t", "-q"])
    nginx_reload: list[str] = Field(default_factory=lambda: ["nginx", "-s", "reload"])


@dataclass(frozen=True)
class EdgeHost:
    settings: EdgeSettings
    config: EdgeHostConfig


def load_edge_host(path: Path) -> EdgeHost:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EdgeConfigError(f"{path}: cannot read the edge settings: {exc}") from None
    try:
        config = EdgeHostConfig.model_validate(raw)
        secrets: dict[str, Any] = {name: SecretStr(_read_secret(file)) for name, file in config.secret_files.items()}
        settings = config.settings.model_copy(update=secrets)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise EdgeConfigError(f"{path}: {problems}") from None
    return EdgeHost(settings=settings, config=config)


def _read_secret(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise EdgeConfigError(f"secret file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EdgeConfigError(f"secret file {path} is accessible by group or others; run: chmod 600 {path}")
    return path.read_text().strip()


def _runner(docker: list[str]) -> Any:
    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        command = [*docker, *argv[1:]] if argv and argv[0] == "docker" else argv
        return subprocess.run(command, capture_output=True, text=True, timeout=600, env=docker_environment())

    return run


def edge_runtime(host: EdgeHost) -> EdgeRuntime:
    paths, settings = host.config.paths, host.settings
    run = _runner(host.config.docker)
    return EdgeRuntime(
        settings=settings,
        services_dir=Path(settings.services_dir),
        run=run,
        kong=KongAdmin(settings.kong_admin_url, state_file=paths.state_dir / "kong-hash"),
        nginx=NginxApplier(paths.nginx_site, paths.state_dir, host.config.nginx_test, host.config.nginx_reload),
        certbot_dirs=CertbotDirs(
            str(paths.certbot_config_dir), str(paths.certbot_work_dir), str(paths.certbot_logs_dir)
        ),
        cert_backoff_file=paths.state_dir / "certificate-backoff.json",
        resolve=system_resolver,
        supavisor=SupavisorTenants(settings),
        realtime=RealtimeTenants(settings),
        issue_certificates=host.config.issue_certificates,
    )


def running_refs(host: EdgeHost) -> set[str]:
    """Refs whose containers run now (they already hold their memory, so admission counts them first)."""
    listed = _runner(host.config.docker)(["docker", "ps", "--format", '{{.Label "com.docker.compose.project"}}'])
    if listed.returncode != 0:
        raise EdgeConfigError(f"cannot list containers: {listed.stderr.strip()[-300:]}")
    prefix = compose_project_name("")
    return {name.removeprefix(prefix) for name in listed.stdout.split() if name.startswith(prefix)}


def edge_precheck(host: EdgeHost, manifests: ManifestSet, running: set[str]) -> list[str]:
    """Everything that would make the edge refuse or fail to render, checked before the database changes."""
    certificates = observe_certificates(host.config.paths.certbot_config_dir)
    return precheck_edge(host.settings, [p.manifest for p in manifests.projects], running, certificates)


def run_edge(host: EdgeHost, manifests: ManifestSet, store: SecretStore, running: set[str]) -> EdgeReport:
    projects = []
    for loaded in manifests.projects:
        secrets = store.project_secrets(loaded.ref)
        if secrets is not None:  # an absent project never applied has nothing at the edge
            projects.append(EdgeProject(loaded.manifest, secrets))
    return apply_edge(edge_runtime(with_engine_pooler_password(host, store)), projects, running)


def with_engine_pooler_password(host: EdgeHost, store: SecretStore) -> EdgeHost:
    """Supavisor logs in as the engine's `pgbouncer` role, whose password only the engine knows (it sets it
    as a SCRAM verifier): hand that one to the tenants, whatever the host's secrets file says."""
    password = store.get(CLUSTER_SCOPE, f"password:{POOLER_ROLE}")
    if password is None:
        return host
    settings = host.settings.model_copy(update={"pooler_manager_password": SecretStr(password)})
    return EdgeHost(settings=settings, config=host.config)
