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
import threading
import time
from collections.abc import Callable

from nextmavens.dockerenv import docker_environment
from nextmavens.platform.service import ServiceSettings

RELEASES_TIMEOUT_S = 30.0  # lists the app's containers
RELEASES_CACHE_S = 5.0  # the page's script asks on every load: the host command (sudo, as root) at most this often


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


class RecentReleases:
    """`active_release` answers per (org, ref, app), each kept `ttl_s` seconds: a signed-in page reloaded in a loop
    runs the host's root command once per app per `ttl_s`, not once per request. A failure is kept as long (asking
    again at once would only run the failing command again). Concurrent misses of one key wait for one run."""

    def __init__(self, ttl_s: float = RELEASES_CACHE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._kept: dict[tuple[str, str, str], tuple[float, dict[str, object] | None, str | None]] = {}

    def active(self, settings: ServiceSettings, org: str, ref: str, app: str) -> dict[str, object] | None:
        key = (org, ref, app)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            kept = self._kept.get(key)
            if kept is None or self.clock() >= kept[0]:
                try:
                    kept = (self.clock() + self.ttl_s, active_release(settings, org, ref, app), None)
                except ReleasesUnavailable as exc:
                    kept = (self.clock() + self.ttl_s, None, str(exc))
                with self._guard:
                    self._drop_expired()
                    self._kept[key] = kept
        if kept[2] is not None:
            raise ReleasesUnavailable(kept[2])
        return dict(kept[1]) if kept[1] is not None else None

    def _drop_expired(self) -> None:
        """Bounded by the apps asked about in the last `ttl_s` (the caller holds the guard)."""
        now = self.clock()
        for key in [k for k, v in self._kept.items() if now >= v[0]]:
            del self._kept[key]
            self._locks.pop(key, None)
