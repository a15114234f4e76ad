"""The host deploy's renders: stacks (compose files with their services' settings inlined) and the context
every host template sees. The Jinja environment and the repository root are nextmavens.templates'."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from nextmavens.edge.kong import KONG_PLUGINS
from nextmavens.host.evolutionhooks import host_hooks_route
from nextmavens.host.pgsizing import postgres_command
from nextmavens.host.platformservice import platform_paths
from nextmavens.templates import REPO_ROOT, render


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_stack(name: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """stacks/<name>/stack.yaml: compose project name, env templates, secrets and databases."""
    meta = yaml.safe_load((root / "stacks" / name / "stack.yaml").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or set(meta) - {"project", "environment", "secrets", "databases"}:
        raise ValueError(f"stacks/{name}/stack.yaml: expected keys project, environment, secrets, databases")
    return meta


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines (comments and blank lines skipped; values taken literally, quotes stripped)."""
    env = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not KEY=value: {line!r}")
        env[key.strip()] = value.strip().strip("'\"")
    return env


def render_stack(name: str, context: dict[str, Any], root: Path = REPO_ROOT) -> dict[str, str]:
    """Render one stack: {file name on the host: content} (compose.yaml only).

    A service's settings may live in an env template (stack.yaml `environment`: service -> template);
    they are inlined into compose.yaml's `environment` rather than referenced with env_file, because
    `docker compose config --hash` and the containers' config-hash label disagree for env_file, which
    would make every run recreate the service."""
    meta = load_stack(name, root)
    service_env = {
        service: parse_env(render(f"stacks/{name}/{template}", root, **context))
        for service, template in (meta.get("environment") or {}).items()
    }
    compose = render(
        f"stacks/{name}/compose.yaml.j2", root, project=meta["project"], service_env=service_env, **context
    )
    return {"compose.yaml": compose}


def template_context(data: Any) -> dict[str, Any]:
    """Template variables for a validated HostData: its fields plus a few derived paths."""
    context = data.model_dump()
    context.update(
        nginx_user="www-data",
        nginx_pid="/run/nginx.pid",
        nginx_conf_dir="/etc/nginx",
        nginx_log_dir="/var/log/nginx",
        nginx_http_port=80,
        nginx_https_port=443,
        # TLS for unknown names is refused in the handshake (nginx >= 1.19.4): no certificate needed.
        nginx_reject_unknown_tls=True,
        # Kong's KONG_PLUGINS: exactly what the rendered declarative config uses (nextmavens.edge.kong).
        kong_plugins=",".join(KONG_PLUGINS),
        postgres_command=postgres_command(data.max_projects),
        # Evolution's webhook network: its gateway and the container's fixed address (nextmavens.host.evolutionhooks)
        evolution_hooks=asdict(host_hooks_route(data)),
        **platform_paths(data),
    )
    return context
