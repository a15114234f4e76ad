"""`nextmavens domains ORG/REF [--json]` (see nextmavens/metrics/domains.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nextmavens.cliparts import Failure, edge_option, projects_option, split_key


@click.command("domains")
@click.argument("project", metavar="ORG/REF")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@projects_option
@edge_option
def domains(project: str, as_json: bool, projects_dir: Path, edge_config: Path | None) -> None:
    """Each custom domain's DNS record to create, what it resolves to, its certificate and the next step."""
    from nextmavens.edge.settingsfile import EdgeConfigError, load_edge_host
    from nextmavens.manifest.loader import ManifestErrors, load_manifests
    from nextmavens.metrics.dnsquery import query
    from nextmavens.metrics.domains import check_domains, render

    org, ref = split_key(project)
    if edge_config is None:
        raise Failure("the edge settings are needed: --edge-config or NEXTMAVENS_EDGE_CONFIG")
    try:
        settings = load_edge_host(edge_config).settings
        manifests = load_manifests(projects_dir)
    except (EdgeConfigError, ManifestErrors, FileNotFoundError) as exc:
        raise Failure(str(exc)) from None
    found = next((p for p in manifests.projects if p.org == org and p.ref == ref), None)
    if found is None:
        raise Failure(f"{org}/{ref} is not declared in {projects_dir}")
    reports = check_domains(
        list(found.manifest.domains),
        settings.project_host(ref),
        settings.host_ipv4,
        Path(settings.letsencrypt_dir),
        lambda name, qtype: query(name, qtype),
    )
    if as_json:
        click.echo(json.dumps({"project": f"{org}/{ref}", "api_host": settings.project_host(ref), "domains": reports},
                              indent=2))
    else:
        click.echo(render(f"{org}/{ref}", reports))
