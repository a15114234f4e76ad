"""Render the repository's host templates (templates/, stacks/) with jinja2: strict about undefined
names, loaded from the repository root whatever the CWD, no process-global cache."""

from __future__ import annotations

import hashlib
import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from nextmavens.edge.kong import KONG_PLUGINS
from nextmavens.host.pgsizing import replication_capacity

REPO_ROOT = Path(__file__).resolve().parents[2]


@cache
def _environment(root: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )
    env.filters["tojson"] = lambda value: json.dumps(value)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    return env


def render(template: str, root: Path = REPO_ROOT, **context: Any) -> str:
    """Render `template` (a path relative to the repository root)."""
    return _environment(str(root)).get_template(template).render(**context)


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
        postgres_replication=replication_capacity(data.max_projects),
    )
    return context
