"""The host's app commands as the service runs them, and an app's active release read through one of them.

On the host the service reaches root only through its privileged command (`privileged_argv`: sudo and the root
script, which allows `deploy ...` and `releases ORG/REF APP --json`); without one (tests, a developer's machine) the
same command line runs in this process's place with the service's own database, master key, manifests and edge
settings. The app's state (which release nginx serves) is root's, so the service asks the host.
"""

from __future__ import annotations

import json
import subprocess
import sys

from nextmavens.dockerenv import docker_environment
from nextmavens.platform.service import ServiceSettings

RELEASES_TIMEOUT_S = 30.0  # lists the app's containers


class ReleasesUnavailable(RuntimeError):
    """The host did not say (no edge settings here, Docker down, the command refused): never its output, which
    is the host's."""


def host_argv(privileged: tuple[str, ...], words: list[str]) -> list[str]:
    return [*privileged, *words] if privileged else [sys.executable, "-m", "nextmavens.cli", *words]


def host_environment(settings: ServiceSettings) -> dict[str, str]:
    """The host command's environment: Docker's, and with no privileged prefix this service's own database,
    master key, manifests and edge settings (the child runs in this process's place)."""
    environment = docker_environment()
    if not settings.privileged_argv:
        environment.update(
            NEXTMAVENS_DSN=settings.dsn,
            NEXTMAVENS_MASTER_KEY=str(settings.master_key),
            NEXTMAVENS_PROJECTS=str(settings.projects_dir),
        )
        if settings.deploy_edge_config is not None:
            environment["NEXTMAVENS_EDGE_CONFIG"] = str(settings.deploy_edge_config)
    return environment


def run_host(settings: ServiceSettings, words: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """The host command `words` run to its end (OSError or subprocess.TimeoutExpired when it did not)."""
    return subprocess.run(
        host_argv(settings.privileged_argv, words),
        env=host_environment(settings),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def active_release(settings: ServiceSettings, org: str, ref: str, app: str) -> dict[str, object] | None:
    """`{"release", "commit", "created"}` of the release nginx serves for the app, None when none is active.
    `org`, `ref` and `app` are checked names (the routes' patterns and the manifest)."""
    try:
        done = run_host(settings, ["releases", f"{org}/{ref}", app, "--json"], RELEASES_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        raise ReleasesUnavailable("the host's releases command did not run") from None
    if done.returncode != 0:
        raise ReleasesUnavailable(f"the host's releases command failed (exit {done.returncode})")
    try:
        rows = json.loads(done.stdout)["releases"]
    except (ValueError, KeyError, TypeError):
        raise ReleasesUnavailable("the host's releases command gave no JSON") from None
    active = next((r for r in rows if isinstance(r, dict) and r.get("state") == "active"), None)
    if active is None:
        return None
    return {"release": int(active["release"]), "commit": str(active["commit"])[:12], "created": str(active["created"])}
