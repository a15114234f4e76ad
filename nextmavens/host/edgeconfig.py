"""The edge settings file the deploy renders on the host, from validated host data.

`nextmavens apply --edge-config FILE` (NEXTMAVENS_EDGE_CONFIG, exported by the nextmavens-env wrapper) reads
it (nextmavens.edge.settingsfile.EdgeHostConfig). The settings are built here as a typed EdgeSettings, so a field
name the edge does not have fails type checks and validation here, not on the host. Pure: no I/O here. The
platform secrets it names live in 0600 files beside it, written on the host from the secrets file; their
values never pass through this module.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import yaml

from nextmavens.edge.settings import EdgeSettings
from nextmavens.host.evolutionhooks import host_hooks_route
from nextmavens.host.hostdata import HostData
from nextmavens.host.projectstudios import studio_route, studios_memory_mb

# EdgeSettings secret field -> the key in the host's secrets file holding its value
EDGE_SECRETS: dict[str, str] = {
    "supavisor_api_secret": "SUPAVISOR_API_JWT_SECRET",  # Supavisor's API_JWT_SECRET (tenant API)
    "realtime_api_secret": "REALTIME_API_JWT_SECRET",  # Realtime's API_JWT_SECRET (tenant API)
    "pooler_manager_password": "POOLER_MANAGER_PASSWORD",  # the pooler's manager role in project databases
    "realtime_db_password": "POSTGRES_PASSWORD",  # supabase_admin, as the Realtime stack connects
    "evolution_api_key": "EVOLUTION_API_KEY",  # Evolution's global AUTHENTICATION_API_KEY (instances, webhooks)
}
# group data memory_limits_mb names -> the edge's shared-service names (memory admission)
_SHARED_NAMES = {"postgres_meta": "postgres-meta", "evolution": "evolution-api"}
PROJECT_STUDIOS = "project-studios"  # the memory admission's name for the per-project Studios' share
_SIZE = re.compile(r"^([1-9][0-9]*)([kmg])$")


def edge_dir(config: HostData) -> PurePosixPath:
    return PurePosixPath(config.edge_config_file).parent / "edge"


def secret_files(config: HostData) -> dict[str, str]:
    """EdgeSettings secret field -> the 0600 file on the host holding it."""
    return {name: str(edge_dir(config) / name.replace("_", "-")) for name in EDGE_SECRETS}


def _body_size_mb(size: str) -> int:
    m = _SIZE.fullmatch(size)
    if not m:
        raise ValueError(f"nginx_client_max_body_size {size!r} is not <n>k|m|g")
    n, unit = int(m.group(1)), m.group(2)
    return max(1, {"k": n // 1024, "m": n, "g": n * 1024}[unit])


def shared_service_limits_mb(memory_limits_mb: dict[str, int]) -> dict[str, int]:
    """The edge's memory admission counts each shared service at its compose limit (group data)."""
    return {_SHARED_NAMES.get(k, k): v for k, v in memory_limits_mb.items()}


def evolution_api_url(config: HostData) -> str:
    """Evolution's API on the host's loopback: for the edge, and for the platform service's WhatsApp endpoints."""
    return f"http://127.0.0.1:{config.loopback_ports.evolution}"


def edge_settings(config: HostData) -> EdgeSettings:
    """The edge's settings from host data, without the platform secrets (their files are named beside them).

    Sets exactly the EdgeSettings fields that have no default there: the host data is their one source."""
    ports = config.loopback_ports
    hooks = host_hooks_route(config)
    studios = studio_route(config)
    shared = shared_service_limits_mb(config.memory_limits_mb)
    if studios is not None:  # the memory admission counts the Studios that may run at once
        shared[PROJECT_STUDIOS] = studios_memory_mb(config)
    return EdgeSettings(
        api_domain=config.api_domain,
        studio_domain=config.studio_domain,
        host_ipv4=config.edge_host_ipv4,
        acme_email=config.admin_email,
        memory_budget_mb=config.memory_budget_mb,
        shared_services_mb=shared,
        platform_network=config.docker_network,
        # container names and in-network ports the stacks declare (stacks/supabase)
        db_host="nextmavens-postgres",
        kong_admin_url=f"http://127.0.0.1:{ports.kong_admin}",
        kong_proxy=f"127.0.0.1:{ports.kong_http}",
        realtime_upstream="nextmavens-realtime:4000",
        realtime_api_url=f"http://127.0.0.1:{ports.realtime}",
        supavisor_api_url=f"http://127.0.0.1:{ports.supavisor_api}",
        studio_upstream=f"127.0.0.1:{ports.studio}",
        pooler_transaction_port=ports.supavisor_pooler,
        client_max_body_size_mb=_body_size_mb(config.nginx_client_max_body_size),
        acme_webroot=config.nginx_acme_webroot,
        # The deploy's own default server (tasks/nginx.py) answers unknown names and every ACME challenge.
        default_server=False,
        postgrest_image=config.images.postgrest,
        gotrue_image=config.images.gotrue,
        storage_image=config.images.storage_api,
        max_projects=config.max_projects,
        evolution_api_url=evolution_api_url(config),
        evolution_hooks_url=config.evolution_hooks_url,
        evolution_hooks_port=hooks.port,
        evolution_hooks_source=hooks.evolution_address,
        platform_domain=config.platform_service_domain,
        platform_upstream=f"127.0.0.1:{ports.platform}",
        metrics_log=str(config.metrics_log),
        # Studio for a project: all None when off (the operator's Studio stays as it is)
        project_studio_domain=None if studios is None else studios.domain,
        studio_meta_gate_listen=None if studios is None else str(studios.gate_port),
        studio_meta_gate_source=None if studios is None else studios.subnet,
        postgres_meta_upstream=None if studios is None else f"127.0.0.1:{ports.postgres_meta}",
        studio_image=None if studios is None else config.images.studio,
        project_studio_memory_mb=None if studios is None else config.memory_limits_mb.get("studio"),
        project_studio_network=None if studios is None else studios.network,
        studio_meta_gate_url=None if studios is None else studios.gate_url,
    )


def edge_host_document(config: HostData) -> dict[str, Any]:
    return {
        # only what the host data sets: the edge's own defaults stay in its code, not frozen into the file
        "settings": edge_settings(config).model_dump(mode="json", exclude_unset=True),
        "secret_files": secret_files(config),
        "issue_certificates": config.edge_issue_certificates,
        "apps": config.app_deploys.model_dump(mode="json"),
    }


def render_edge_config(config: HostData) -> str:
    header = (
        "# Managed by NextMavens (tasks/edge.py) from group data; read by `nextmavens apply` through\n"
        "# NEXTMAVENS_EDGE_CONFIG. No secret values here: secret_files name 0600 files.\n"
    )
    return header + yaml.safe_dump(edge_host_document(config), sort_keys=True, default_flow_style=False)
