"""Uptime checks: every project's API name, custom domains and app (its `auth.site_url`) fetched from the host
through their public names, as a user reaches them; each check counted per UTC day, each change of state recorded,
and an alert on the first failure after a success and on the recovery (alert on change, as `monitor health`).

A target is up when it answers below 500 (Kong's 401 to a request without a key still proves nginx, the
certificate and Kong serve the name). `targets_of` and `transitions` are pure; `probe` does one request, and may be
told where to connect (tests: a loopback nginx) while the name still goes in the Host header and TLS' SNI.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from nextmavens.control.store.monitoring import Target

API_PATH = "/rest/v1/"


@dataclass(frozen=True)
class ProjectNames:
    scope: str  # org/ref
    ref: str
    domains: tuple[str, ...]
    site_url: str | None
    active: bool = True


def targets_of(api_domain: str, projects: Iterable[ProjectNames], https: bool = True) -> list[tuple[Target, str]]:
    """(target, URL) for each active project: its API name, each custom domain (both at the REST path), its app."""
    scheme = "https" if https else "http"
    found: list[tuple[Target, str]] = []
    for project in projects:
        if not project.active:
            continue
        if api_domain:
            name = f"{project.ref}.{api_domain}"
            found.append((Target(project.scope, "api", name), f"{scheme}://{name}{API_PATH}"))
        for domain in project.domains:
            found.append((Target(project.scope, "domain", domain), f"{scheme}://{domain}{API_PATH}"))
        if project.site_url:
            host = urlsplit(project.site_url).hostname
            if host and host not in ("localhost", "127.0.0.1"):
                found.append((Target(project.scope, "app", host), project.site_url))
    return found


@dataclass(frozen=True)
class Check:
    ok: bool
    status: int | None
    detail: str
    seconds: float


def probe(url: str, connect_to: tuple[str, int] | None = None, timeout: float = 10.0) -> Check:
    """GET `url` once; `connect_to` replaces the name's address (never the name sent)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        sock = socket.create_connection(connect_to or (host, port), timeout=timeout)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn.sock = sock
        conn.request("GET", path, headers={"User-Agent": "nextmavens-uptime", "Connection": "close"})
        response = conn.getresponse()
        response.read(65536)
        status = int(response.status)
    except ssl.SSLError as exc:
        return Check(False, None, f"TLS: {exc.reason or exc}"[:200], time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Check(False, None, (str(exc) or type(exc).__name__)[:200], time.monotonic() - started)
    finally:
        conn.close()
    return Check(status < 500, status, f"HTTP {status}", time.monotonic() - started)


@dataclass(frozen=True)
class Change:
    target: Target
    ok: bool
    detail: str
    alert: str | None  # the message to send, None for a first check that is up (recorded, not alerted)


def transitions(previous: Mapping[Target, tuple[bool, str]], current: Mapping[Target, Check]) -> list[Change]:
    """The changes to record: a target seen for the first time, and one whose up/down state flipped. A target
    that keeps failing alerts once; its recovery alerts once."""
    found = []
    for target in sorted(current, key=lambda t: (t.scope, t.kind, t.name)):
        check = current[target]
        before = previous.get(target)
        label = f"{target.scope} {target.kind} {target.name}"
        if before is None:
            alert = None if check.ok else f"{label} is DOWN: {check.detail}"
            found.append(Change(target, check.ok, check.detail, alert))
        elif before[0] and not check.ok:
            found.append(Change(target, False, check.detail, f"{label} is DOWN: {check.detail} (was {before[1]})"))
        elif not before[0] and check.ok:
            found.append(Change(target, True, check.detail, f"{label} recovered: {check.detail}"))
    return found


def check_all(
    targets: list[tuple[Target, str]], prober: Callable[[str], Check], workers: int = 8
) -> dict[Target, Check]:
    """Every target probed, `workers` at a time (a slow name does not hold the others up)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) or 1))) as pool:
        checks = list(pool.map(lambda item: prober(item[1]), targets))
    return {target: check for (target, _), check in zip(targets, checks, strict=True)}


def run_uptime(
    conn: psycopg.Connection,
    targets: list[tuple[Target, str]],
    prober: Callable[[str], Check],
    send: Callable[[str], bool],
    now: float | None = None,
) -> list[Change]:
    """One round: probe, alert on changes (Telegram through `send`), then record the day's counts, the changes and
    the alerts in one transaction."""
    import datetime

    from nextmavens.control.store import monitoring

    checks = check_all(targets, prober)
    changes = transitions(monitoring.last_states(conn), checks)
    sent = {change.target: send(change.alert) for change in changes if change.alert}
    day = datetime.datetime.fromtimestamp(now or time.time(), datetime.UTC).date()
    with conn.transaction():
        monitoring.record_checks(conn, day, [(target, check.ok) for target, check in checks.items()])
        for change in changes:
            monitoring.record_change(conn, change.target, change.ok, change.detail)
            if change.alert:
                monitoring.add_alert(
                    conn,
                    "uptime",
                    change.target.scope,
                    change.alert,
                    {"kind": change.target.kind, "name": change.target.name, "ok": change.ok, "detail": change.detail},
                    sent[change.target],
                )
    return changes


def project_names_from(projects_dir: Path) -> list[ProjectNames]:
    """The manifests' projects as uptime needs them."""
    from nextmavens.manifest.loader import load_manifests

    return [
        ProjectNames(
            scope=project.key,
            ref=project.ref,
            domains=tuple(project.manifest.domains),
            site_url=project.manifest.auth.site_url or None,
            active=project.manifest.state == "active",
        )
        for project in load_manifests(projects_dir).projects
    ]
