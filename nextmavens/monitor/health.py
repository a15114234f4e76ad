"""Health: container state, health and restart counts through the docker SDK, HTTP probes of the
platform's and each project's public endpoints, and an alert only when something changes state.

The docker client is passed in (`docker.from_env()` on the host) so the logic is tested against the
Docker Engine API's documented container shape (`State.Status`, `State.Health.Status`, `RestartCount`).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nextmavens.monitor.state import load_json, save_json

# Health states that are not a problem: no healthcheck at all, passing, or still in its start period.
GOOD_HEALTH = (None, "healthy", "starting")


@dataclass(frozen=True)
class ContainerHealth:
    name: str
    status: str  # created | running | paused | restarting | removing | exited | dead
    health: str | None
    restarts: int
    memory_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "running" and self.health in GOOD_HEALTH


def read_containers(client: Any, with_memory: bool = False) -> list[ContainerHealth]:
    found = []
    for container in client.containers.list(all=True):
        attrs = container.attrs or {}
        state = attrs.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        memory = None
        if with_memory and state.get("Status") == "running":
            try:
                try:
                    stats = container.stats(stream=False, one_shot=True)  # one sample, not two
                except TypeError:
                    stats = container.stats(stream=False)
                memory = (stats.get("memory_stats") or {}).get("usage")
            except Exception:  # noqa: BLE001 - memory is a nicety; never fail the check on it
                memory = None
        found.append(
            ContainerHealth(
                name=str(attrs.get("Name") or getattr(container, "name", "?")).lstrip("/"),
                status=str(state.get("Status", "unknown")),
                health=str(health) if health else None,
                restarts=int(attrs.get("RestartCount") or 0),
                memory_bytes=int(memory) if memory is not None else None,
            )
        )
    return sorted(found, key=lambda c: c.name)


@dataclass(frozen=True)
class ProbeResult:
    name: str
    url: str
    ok: bool
    status: int | None
    error: str | None
    seconds: float


def probe(name: str, url: str, timeout: float = 10.0) -> ProbeResult:
    """GET url once. Up means the server answered below 500: a 401 from Kong still proves nginx and Kong
    route the name; a 502/503 means the service behind them is down."""
    started = time.monotonic()
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "nextmavens-health"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs from config
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return ProbeResult(name, url, False, None, str(reason)[:200], time.monotonic() - started)
    return ProbeResult(name, url, status < 500, status, None, time.monotonic() - started)


def snapshot(containers: Sequence[ContainerHealth] | None, probes: Sequence[ProbeResult]) -> dict[str, Any]:
    """The state alerts compare: {"container:NAME" | "probe:NAME" | "docker": {...}}."""
    current: dict[str, Any] = {}
    if containers is None:
        current["docker"] = {"ok": False, "detail": "docker engine unreachable"}
    else:
        for c in containers:
            detail = c.status + (f" ({c.health})" if c.health else "")
            current[f"container:{c.name}"] = {"ok": c.ok, "detail": detail, "restarts": c.restarts}
    for p in probes:
        detail = f"HTTP {p.status}" if p.status is not None else (p.error or "no answer")
        current[f"probe:{p.name}"] = {"ok": p.ok, "detail": detail}
    return current


def changes(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Messages for state changes only: a check that keeps failing alerts once, not every run."""
    messages = []
    for key in sorted(set(previous) | set(current)):
        before, now = previous.get(key), current.get(key)
        if now is None:
            if key.startswith("container:"):
                messages.append(f"{key} disappeared")
            elif key.startswith("superuser:") and before is not None and not before["ok"]:
                messages.append(f"{key} recovered: no longer a superuser")
            elif key.startswith("whatsapp:") and before is not None and not before["ok"]:
                messages.append(f"{key} recovered: the instance is gone from Evolution")
            elif key == "docker" and before is not None and not before["ok"]:
                messages.append("docker engine reachable again")
            continue
        if before is None:
            if not now["ok"]:
                messages.append(f"{key} is DOWN: {now['detail']}")
            continue
        if before["ok"] and not now["ok"]:
            messages.append(f"{key} is DOWN: {now['detail']} (was {before['detail']})")
        elif not before["ok"] and now["ok"]:
            messages.append(f"{key} recovered: {now['detail']}")
        grew = int(now.get("restarts", 0)) - int(before.get("restarts", 0))
        if grew > 0:
            messages.append(f"{key} restarted {grew} time(s) since the last check ({now['restarts']} in all)")
    return messages


@dataclass
class HealthCheck:
    containers: list[ContainerHealth] | None
    probes: list[ProbeResult]
    messages: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "containers": None if self.containers is None else [asdict(c) | {"ok": c.ok} for c in self.containers],
            "probes": [asdict(p) for p in self.probes],
            "changes": self.messages,
        }


def check_health(
    docker_client: Any | None,
    targets: Sequence[tuple[str, str]],
    state_file: Path,
    send: Callable[[str], Any],
    prober: Callable[[str, str], ProbeResult] = probe,
    extra: dict[str, dict[str, Any]] | None = None,
) -> HealthCheck:
    """One health run. `extra` adds other checks to the same change-only alerting (e.g. each target's
    backup freshness as "backup:ORG/PROJECT": {"ok": ..., "detail": ...})."""
    containers = None
    if docker_client is not None:
        try:
            containers = read_containers(docker_client)
        except Exception:  # noqa: BLE001 - an unreachable engine is itself a state to report
            containers = None
    results = [prober(name, url) for name, url in targets]
    current = snapshot(containers, results)
    current.update(extra or {})
    state = load_json(state_file)
    previous = state.get("health", {})
    if containers is None:
        # The engine cannot be asked: containers keep their last known state rather than "disappear".
        current.update({k: v for k, v in previous.items() if k.startswith("container:")})
    messages = changes(previous, current)
    for message in messages:
        send(message)
    save_json(state_file, {"health": current, "checked_at": time.time()})
    return HealthCheck(containers, results, messages)


def probe_targets(env: dict[str, str], project_refs: Sequence[str]) -> list[tuple[str, str]]:
    """Platform endpoints from NEXTMAVENS_PROBE_URLS ("name=url,name=url"), plus each project's API
    (`https://<ref>.<NEXTMAVENS_API_DOMAIN>/rest/v1/`) when the API domain is set."""
    targets = []
    for item in filter(None, (part.strip() for part in env.get("NEXTMAVENS_PROBE_URLS", "").split(","))):
        name, _, url = item.partition("=")
        if url.startswith(("http://", "https://")):
            targets.append((name.strip(), url.strip()))
    domain = env.get("NEXTMAVENS_API_DOMAIN", "").strip().strip(".")
    if domain:
        targets += [(f"project:{ref}", f"https://{ref}.{domain}/rest/v1/") for ref in project_refs]
    return targets


def docker_from_env() -> Any | None:
    """The docker SDK client for the local engine, or None when it cannot be reached."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception:  # noqa: BLE001
        return None
