"""`nextmavens metrics [ORG/REF] [--since 24h] [--json]`: current values and sparklines of a project (or, without
ORG/REF, of the host) from the control database (NEXTMAVENS_DSN, the operator on the host); without
NEXTMAVENS_DSN and with a login, through the platform API (`GET /v1/projects/{org}/{ref}/metrics`), ORG/REF
defaulting to the linked project."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from nextmavens.metricsrender import render_text
from nextmavens.metricsview import HOST
from nextmavens.metrictiers import parse_since


def read_view(dsn: str, scope: str, seconds: int) -> dict[str, Any]:
    from nextmavens.control.db import connect_control
    from nextmavens.control.store import metrics as store
    from nextmavens.metricsview import metrics_view

    now = int(time.time())
    with connect_control(dsn) as conn:
        points = store.read_points(conn, scope, now - seconds, now)
        current = store.latest(conn, scope)
    return metrics_view(scope, now - seconds, now, points, current)


@click.command("metrics")
@click.argument("project", required=False, metavar="[ORG/REF]")
@click.option("--since", default="24h", show_default=True, help="How far back: 90m, 24h, 7d, 1y.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def metrics(project: str | None, since: str, as_json: bool) -> None:
    """Current values and sparklines of a project's metrics (the host's without ORG/REF)."""
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    dsn = os.environ.get("NEXTMAVENS_DSN")
    if dsn:
        if project is not None:
            from nextmavens.projectlink import ProjectLinkError, check_project

            try:
                check_project(project)
            except ProjectLinkError as exc:
                raise click.UsageError(str(exc)) from None
        view = read_view(dsn, project or HOST, seconds)
    else:
        view = _through_api(project, since)
    click.echo(json.dumps(view, indent=2) if as_json else render_text(view))


def _through_api(project: str | None, since: str) -> dict[str, Any]:
    from nextmavens.remote.credentials import uses_api
    from nextmavens.remote.session import api_errors, chosen_project, client_for

    if not uses_api():
        raise click.ClickException("set NEXTMAVENS_DSN (on the host) or log in (`nextmavens login`)")

    @api_errors
    def fetch() -> dict[str, Any]:
        org, ref = chosen_project(project)
        answer: dict[str, Any] = client_for().get(f"/v1/projects/{org}/{ref}/metrics", {"since": since})
        return answer

    return fetch()
