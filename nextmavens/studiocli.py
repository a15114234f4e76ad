"""`nextmavens studio start REF | stop REF | list`: a project's Studio container on the host (nextmavens.studiohost).
The platform service runs these as root through `nextmavens-privileged studio ...` (sudo), so they take no option:
the control database, the edge settings and the master key are those the host's wrapper names (NEXTMAVENS_DSN,
NEXTMAVENS_EDGE_CONFIG, NEXTMAVENS_MASTER_KEY). Each prints one JSON line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nextmavens.cliparts import Failure

if TYPE_CHECKING:  # the command line starts without the edge and Docker modules (tests/unit/cli)
    from nextmavens.studiohost import StudioDocker, StudioHost


def studio_action(
    action: str, ref: str | None, docker: StudioDocker, host: StudioHost, master_key: bytes, active: bool
) -> dict[str, object]:
    """The work of one command, given its parts (the command line reads them from the host; tests pass stand-ins)."""
    from nextmavens.platform.studiogate import StudioKeys
    from nextmavens.studiohost import StudioRefused, running_studios, start_studio, stop_studio

    if action == "list":
        return {"studios": running_studios(docker)}
    if ref is None:
        raise StudioRefused(f"studio {action} needs a project ref")
    if action == "start":
        return {"ref": ref, "upstream": start_studio(docker, host, StudioKeys(master_key), ref, active)}
    if action == "stop":
        return {"ref": ref, "stopped": stop_studio(docker, ref)}
    raise StudioRefused(f"unknown studio action {action!r}")


def _host_parts() -> tuple[StudioHost, bytes, str]:
    from nextmavens.control.crypto import load_master_key
    from nextmavens.edge.step import load_edge
    from nextmavens.studiohost import studio_host_of

    names = ("NEXTMAVENS_EDGE_CONFIG", "NEXTMAVENS_DSN", "NEXTMAVENS_MASTER_KEY")
    config, dsn, key = (os.environ.get(name) for name in names)
    if not (config and dsn and key):
        raise Failure("studio runs on the host: NEXTMAVENS_EDGE_CONFIG, NEXTMAVENS_DSN and NEXTMAVENS_MASTER_KEY")
    host = studio_host_of(load_edge(Path(config)).settings)
    if host is None:
        raise Failure("the edge settings run no Studio for projects (studio_image, project_studio_* unset)")
    return host, load_master_key(Path(key)), dsn


def project_active(dsn: str, ref: str) -> bool:
    from nextmavens.control.db import connect_control
    from nextmavens.control.store import access

    with connect_control(dsn) as conn:
        return any(p.ref == ref and p.state == "active" for p in access.applied_projects(conn))


@click.command("studio")
@click.argument("action", type=click.Choice(["start", "stop", "list"]))
@click.argument("ref", required=False)
def studio(action: str, ref: str | None) -> None:
    """Start (or find) a project's Studio, stop it, or list the running ones, as JSON (the platform service's
    Studio for a project; README "Studio for a project")."""
    from nextmavens.apps.dockerops import SdkDocker
    from nextmavens.studiohost import StudioRefused

    host, master_key, dsn = _host_parts()
    try:
        active = action == "start" and ref is not None and project_active(dsn, ref)
        answer = studio_action(action, ref, SdkDocker.from_env(), host, master_key, active)
    except StudioRefused as exc:
        raise Failure(str(exc)) from None
    click.echo(json.dumps(answer, sort_keys=True))
