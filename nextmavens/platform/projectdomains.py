"""A project's custom domains as `nextmavens domains ORG/REF --json` reports them (the DNS record to create, what the
name resolves to, the certificate, the next step), for the dashboard's project page and its Recheck button.

The check reads the edge settings and the certificates, which are root's on the host: there it runs through the
service's privileged command (`<prefix> domains ORG/REF --json`, the sudoers rule's exact words); elsewhere (tests, a
developer's machine) the same command in a child process with the deploy's edge settings. The last report per
project is kept in memory and shown until the next recheck; rechecks are rate limited per project (each one sends
DNS queries), and only members who may read the project may see or recheck it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from nextmavens.platform.auth import ApiError, Caller
from nextmavens.platform.authz import Action
from nextmavens.platform.projectaccess import visible_project
from nextmavens.platform.ratelimit import FailureLimiter
from nextmavens.platform.service import Service

CHECK_TIMEOUT_S = 60.0  # a few DNS queries per domain, each bounded by the resolver's own timeout
RECHECK_BURST = 3  # rechecks of one project at once ...
RECHECK_REFILL_S = 20.0  # ... then one more every this many seconds


@dataclass
class _State:
    limiter: FailureLimiter = field(default_factory=lambda: FailureLimiter(RECHECK_BURST, RECHECK_REFILL_S, 1000))
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # org/ref -> the last report
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary[Service, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(service: Service) -> _State:
    with _STATES_LOCK:
        return _STATES.setdefault(service, _State())


def domains_argv(service: Service, org: str, ref: str) -> list[str]:
    settings = service.settings
    words = ["domains", f"{org}/{ref}", "--json"]
    if settings.privileged_argv:
        return [*settings.privileged_argv, *words]
    if settings.deploy_edge_config is None:
        raise ApiError(503, "domains_unavailable", "custom domains are checked on the host, with its edge settings")
    return [sys.executable, "-m", "nextmavens.cli", *words, "--projects", str(settings.projects_dir),
            "--edge-config", str(settings.deploy_edge_config)]  # fmt: skip


def last_report(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any] | None:
    """The project's last domains report (None before the first check)."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    state = _state(service)
    with state.lock:
        return state.reports.get(f"{org}/{ref}")


def recheck(service: Service, caller: Caller, org: str, ref: str) -> dict[str, Any]:
    """Run the check again now (429 when this project was rechecked too often) and keep its report."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    state = _state(service)
    key = f"{org}/{ref}"
    with state.lock:
        wait = state.limiter.take(key, time.monotonic())
    if wait:
        raise ApiError(429, "rate_limited", f"checked a moment ago: try again in {wait} s")
    report = _run(domains_argv(service, org, ref))
    report["checked_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with state.lock:
        state.reports[key] = report
    return report


def _run(argv: list[str]) -> dict[str, Any]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ApiError(502, "domains_failed", f"the domains check did not finish ({type(exc).__name__})") from None
    if done.returncode != 0:
        # the command's own message (a project, file or setting it names), never its environment
        reason = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:] or ["no output"]
        raise ApiError(502, "domains_failed", f"the domains check failed: {reason[0][:300]}")
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise ApiError(502, "domains_failed", "the domains check gave no JSON answer") from None
    return report
