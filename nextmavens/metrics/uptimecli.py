"""`nextmavens monitor uptime` (the `uptime` timer): one round of nextmavens/metrics/uptime.py. Added to the monitor
group by nextmavens/cli.py, above both."""

from __future__ import annotations

import os
from pathlib import Path

import click

from nextmavens.backup.alerts import alerts_from_env
from nextmavens.control.db import connect_control
from nextmavens.manifest.loader import ManifestErrors


@click.command("uptime")
def uptime_command() -> None:
    """Fetch every active project's API name, custom domains and app through their public names; count each
    check per day and alert on the first failure after a success and on the recovery."""
    from nextmavens.metrics.uptime import probe, project_names_from, run_uptime, targets_of

    dsn = os.environ.get("NEXTMAVENS_DSN")
    if not dsn:
        raise click.ClickException("NEXTMAVENS_DSN is not set (the host's nextmavens-env wrapper sets it)")
    projects = Path(os.environ.get("NEXTMAVENS_PROJECTS") or "projects")
    try:
        names = project_names_from(projects)
    except (ManifestErrors, FileNotFoundError) as exc:
        raise click.ClickException(f"projects unreadable: {exc}") from None
    api_domain = os.environ.get("NEXTMAVENS_API_DOMAIN", "").strip().strip(".")
    edge_config = os.environ.get("NEXTMAVENS_EDGE_CONFIG")
    if not api_domain and edge_config:  # the host's wrapper names the edge settings, which hold the API domain
        from nextmavens.edge.settingsfile import EdgeConfigError, load_edge_host

        try:
            api_domain = load_edge_host(Path(edge_config)).settings.api_domain
        except EdgeConfigError as exc:
            raise click.ClickException(str(exc)) from None
    targets = targets_of(api_domain, names)
    alerts = alerts_from_env()
    with connect_control(dsn) as control:
        changes = run_uptime(control, targets, probe, alerts.send)
    click.echo(f"{len(targets)} names checked, {len(changes)} changed")
