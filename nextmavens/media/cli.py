"""`nextmavens media offload`: one offload pass for every project whose manifest declares media_offload (the host's
timer runs it; settings in media/run.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from nextmavens.cliparts import projects_option


@click.group("media")
def media() -> None:
    """Media offload to Cloudinary."""


@media.command("offload")
@projects_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"ORG/REF": {"offloaded", "failed", "bytes_freed", "references"}} (references: rows rewritten).',
)
def offload_command(projects_dir: Path, as_json: bool) -> None:
    """Upload each declared project's old matching files to Cloudinary, verify them, then delete them here. Exit 1
    when any file could not be offloaded (it stays here)."""
    from nextmavens.media.run import OffloadSettingsError, client_from_env, offload_projects, storage_root

    try:
        client = client_from_env(os.environ)
    except (OffloadSettingsError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    reports = offload_projects(projects_dir, storage_root(os.environ), client, time.time())
    summary = {
        key: {
            "offloaded": r.offloaded,
            "failed": [f"{p}: {why}" for p, why in r.failed],
            "bytes_freed": r.bytes_freed,
            "references": r.references,
        }
        for key, r in reports.items()
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        for key, r in reports.items():
            click.echo(
                f"{key}: {len(r.offloaded)} offloaded ({r.bytes_freed} bytes), {len(r.failed)} kept, "
                f"{r.references} references rewritten"
            )
    if any(not r.ok for r in reports.values()):
        raise SystemExit(1)
