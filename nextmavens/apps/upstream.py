"""nginx's file for one app: its upstream (the active release's loopback port) and a server per domain, with the
ACME path, a redirect to HTTPS and an HTTPS server once the name's certificate exists (the edge's live paths).

Pure: `render_app_nginx`. The switch writes it with the edge's NginxApplier (`nginx -t`, reload, last good kept).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from nextmavens.apps.releases import check_preview_name, preview_hosts
from nextmavens.edge.certs import live_paths
from nextmavens.edge.inputs import platform_name_problem
from nextmavens.edge.settings import EdgeSettings
from nextmavens.naming import pg_name
from nextmavens.templates import environment
from nextmavens.validation import check_domain

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class AppVhost:
    name: str
    cert: tuple[str, str] | None


def upstream_name(ref: str, app: str, preview: str | None = None) -> str:
    base = f"nm_app_{pg_name(ref)}__{pg_name(app)}"
    return f"{base}__p_{pg_name(check_preview_name(preview))}" if preview is not None else base


def conf_filename(ref: str, app: str, preview: str | None = None) -> str:
    """One file per app, one more per preview (`--preview-NAME`: app names hold no double hyphen)."""
    if preview is None:
        return f"nextmavens-app-{ref}--{app}.conf"
    return f"nextmavens-app-{ref}--{app}--preview-{check_preview_name(preview)}.conf"


SERVER_NAME = re.compile(r"\bserver_name\s+([^;]*);")  # \b: not proxy_ssl_server_name


def edge_server_names(edge_conf: str) -> set[str]:
    """Every `server_name` in the edge's nginx file: names an app's file must never repeat (nginx would warn and
    serve whichever file sorts first, and `nextmavens-app-*` sorts before `nextmavens-edge`)."""
    return {name.lower() for match in SERVER_NAME.finditer(edge_conf) for name in match.group(1).split()}


def render_app_nginx(
    settings: EdgeSettings,
    ref: str,
    app: str,
    domains: Sequence[str],
    port: int,
    release: int,
    certificates: Collection[str] = (),
    body_mb: int | None = None,
    preview: str | None = None,
    edge_names: Collection[str] = (),
) -> str:
    """`port`: the active release's loopback port (or the preview's); `certificates`: names whose live certificate
    exists. A preview serves `NAME.<domain>` for each of `domains` through an upstream of its own. ValueError for a
    name that is the platform's or one the edge serves (`edge_names`): an app's server never shadows the edge's."""
    if preview is not None:
        domains = preview_hosts(preview, domains)
    if not 0 < port < 65536:
        raise ValueError(f"not a port: {port}")
    for name in domains:
        refused = platform_name_problem(settings, name)
        if refused is None and name.lower() in edge_names:
            refused = f"host name {name!r} is served by the edge (its nginx file names it)"
        if refused is not None:
            raise ValueError(f"app {ref}/{app}: {refused}; no server block written")
    vhosts = [
        AppVhost(check_domain(name), live_paths(settings, name) if name in certificates else None) for name in domains
    ]
    listen = settings.listen_address
    https_suffix = "" if settings.https_port == 443 else f":{settings.https_port}"
    return (
        environment(TEMPLATES, trim_blocks=True)
        .get_template("app-nginx.conf.j2")
        .render(
            ref=ref,
            app=app,
            release=release,
            preview=preview,
            upstream=upstream_name(ref, app, preview),
            port=port,
            vhosts=vhosts,
            listen_http=f"{listen}:{settings.http_port}" if listen else str(settings.http_port),
            listen_https=f"{listen}:{settings.https_port}" if listen else str(settings.https_port),
            https_suffix=https_suffix,
            acme_webroot=settings.acme_webroot,
            body_mb=body_mb or settings.client_max_body_size_mb,
        )
    )
