"""`nextmavens deploy [ORG/REF] APP`: on a developer's machine (a login, no NEXTMAVENS_DSN) it sends the linked
folder's current commit (`git archive HEAD`: uncommitted changes are not sent, as Kamal builds from a clone) to
`POST /v1/projects/{org}/{ref}/apps/{app}/deploys` and prints the build and release log as it streams; on the host
(through the wrapper: NEXTMAVENS_DSN and NEXTMAVENS_EDGE_CONFIG) it builds the declared source itself
(nextmavens/apps/cli.py). It chooses between the two, so it stands above both, like `whatsapp connect`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from nextmavens.apps.releases import check_preview_name
from nextmavens.cliparts import Failure, connection_options, edge_option, projects_option
from nextmavens.devcli.events import read_events
from nextmavens.gitrepo import git_environment
from nextmavens.remote.api import path_of
from nextmavens.remote.credentials import uses_api
from nextmavens.remote.session import DevFailure, api_errors, chosen_project, client_for

ARCHIVE_TYPE = "application/x-tar"
# Builds print as they go; a quiet step (an install) may take minutes, and the service sends comments meanwhile.
READ_TIMEOUT_S = 600.0
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # what the service accepts (ServiceSettings.deploy_max_body_bytes)


def folder_archive(folder: Path, gitref: str | None) -> tuple[bytes, str]:
    """(`git archive` tar of the commit, its id) of the repository holding `folder` (the tree of `folder` in it):
    HEAD unless `gitref`."""
    wanted = gitref or "HEAD"
    if wanted.startswith("-"):
        raise DevFailure(f"--ref {wanted!r} is not a git ref")

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", *args], cwd=folder, env=git_environment(), capture_output=True, timeout=120, check=False
        )

    found = git("rev-parse", "--verify", "--end-of-options", f"{wanted}^{{commit}}")
    if found.returncode != 0:
        raise DevFailure(f"{folder} has no commit {wanted!r} (deploy sends a commit of a git repository)")
    commit = found.stdout.decode().strip()
    data = git("archive", "--format=tar", commit)  # in a subfolder of the repository: that folder's tree
    if data.returncode != 0:
        raise DevFailure(f"git archive failed: {data.stderr.decode(errors='replace').strip()[-300:]}")
    if len(data.stdout) > MAX_UPLOAD_BYTES:
        raise DevFailure(f"the commit's archive is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        click.echo("note: uncommitted changes are not deployed (commit them first)", err=True)
    return data.stdout, commit


@api_errors
def deploy_through_api(
    org: str, ref: str, app: str, gitref: str | None, as_json: bool, preview: str | None = None
) -> None:
    data, commit = folder_archive(Path.cwd(), gitref)
    what = f" as preview {preview!r}" if preview is not None else ""
    click.echo(f"deploying {org}/{ref} {app}{what} at commit {commit[:12]} ({len(data) // 1024} KiB)", err=True)
    client = client_for()
    path = path_of("v1", "projects", org, ref, "apps", app, "deploys")
    end: dict[str, object] | None = None
    params = {"preview": preview} if preview is not None else None
    lines = client.stream_lines(path, params, read_timeout=READ_TIMEOUT_S, upload=(data, ARCHIVE_TYPE))
    for event in read_events(lines):
        if event.name == "end":
            end = json.loads(event.data)
            break
        click.echo(json.dumps({"line": event.data}) if as_json else event.data)
        sys.stdout.flush()
    if as_json:
        click.echo(json.dumps({"end": end}))
    if end is None or end.get("exit_code") != 0:
        why = "the stream ended early" if end is None else f"the deploy failed ({end.get('reason')})"
        raise DevFailure(f"{org}/{ref} {app}: {why}; the release that served before still serves")


@api_errors
def remove_preview_through_api(org: str, ref: str, app: str, preview: str) -> None:
    client_for().delete(path_of("v1", "projects", org, ref, "apps", app, "previews", preview))
    click.echo(f"removed preview {preview!r} of {org}/{ref} {app}")


@click.command("deploy")
@click.argument("names", nargs=-1, required=True, metavar="[ORG/REF] APP")
@click.option("--ref", "gitref", default=None, help="Git ref to build (default: HEAD; on the host: the manifest's).")
@click.option(
    "--archive",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="(host) A `git archive` tar to build instead of the declared source.",
)
@click.option("--preview", default=None, metavar="NAME", help="Run it as preview NAME, served at NAME.<app domain>.")
@click.option("--remove-preview", default=None, metavar="NAME", help="Remove preview NAME (nothing is built).")
@click.option("--json", "as_json", is_flag=True, help="(through the API) JSON lines: {\"line\"}, then {\"end\"}.")
@projects_option
@connection_options
@edge_option
def deploy(
    names: tuple[str, ...],
    gitref: str | None,
    archive: Path | None,
    preview: str | None,
    remove_preview: str | None,
    as_json: bool,
    projects_dir: Path,
    dsn: str | None,
    master_key: Path,
    lock_timeout: float,
    edge_config: Path | None,
) -> None:
    """Build APP and release it: healthy first, then nginx switches; the release before stays for rollback.

    With a login (no NEXTMAVENS_DSN) it sends this folder's current commit to the platform service (ORG/REF
    defaults to the linked project). On the host it builds the app's declared source (ORG/REF required).
    --preview NAME runs the build as a second release at NAME.<domain> for each of the app's domains, leaving the
    app's own release as it is; --remove-preview NAME takes that preview out."""
    if len(names) > 2:
        raise Failure("deploy takes [ORG/REF] APP")
    project, app = (None, names[0]) if len(names) == 1 else names
    if remove_preview is not None and (preview is not None or archive is not None or gitref is not None):
        raise Failure("--remove-preview builds nothing: it takes no --preview, --archive or --ref")
    for name in (preview, remove_preview):
        if name is not None:
            try:
                check_preview_name(name)
            except ValueError as exc:
                raise Failure(str(exc)) from None
    if uses_api():
        if archive is not None:
            raise Failure("--archive is for the host; through the API the folder's commit is sent")
        org, ref = chosen_project(project)
        if remove_preview is not None:
            remove_preview_through_api(org, ref, app, remove_preview)
            return
        deploy_through_api(org, ref, app, gitref, as_json, preview)
        return
    if project is None:
        raise Failure("on the host, name the project: nextmavens deploy ORG/REF APP")
    from nextmavens.apps.cli import host_deploy, host_remove_preview

    if remove_preview is not None:
        host_remove_preview(project, app, remove_preview, projects_dir, edge_config)
        return
    outcome = host_deploy(
        project, app, gitref, archive, projects_dir, dsn, master_key, lock_timeout, edge_config, preview=preview
    )
    where = f"preview {preview!r} " if preview is not None else ""
    click.echo(f"deployed {where}release {outcome.release} in {outcome.seconds:.1f} s")
