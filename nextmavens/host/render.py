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
    """stacks/<name>/stack.yaml: compose project name, extra files and the secrets it needs."""
    meta = yaml.safe_load((root / "stacks" / name / "stack.yaml").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or set(meta) - {"project", "files", "secrets", "databases"}:
        raise ValueError(f"stacks/{name}/stack.yaml: expected keys project, files, secrets, databases")
    return meta


def render_stack(name: str, context: dict[str, Any], root: Path = REPO_ROOT) -> dict[str, str]:
    """Render one stack: {file name on the host: content}. compose.yaml is rendered last, with
    `files_sha256` (a digest of the other rendered files) so it can label its services: a change
    in an env file then changes the services' config hash, and compose recreates them."""
    meta = load_stack(name, root)
    files = {
        out: render(f"stacks/{name}/{src}", root, **context) for out, src in (meta.get("files") or {}).items()
    }
    digest = sha256("".join(f"{k}\0{files[k]}\0" for k in sorted(files)))
    files["compose.yaml"] = render(
        f"stacks/{name}/compose.yaml.j2", root, project=meta["project"], files_sha256=digest, **context
    )
    return files


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
    )
    return context
