"""A project's metrics, uptime and alerts as a caller may see them: the one place the API
(`GET /v1/projects/{org}/{ref}/metrics`, `/uptime`, `/alerts`) and the dashboard's project page read them from, each
read authorized like the project itself (404 for a project the caller cannot see)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nextmavens.control.store import metrics as store
from nextmavens.control.store import monitoring
from nextmavens.control.store.projects import all_orgs
from nextmavens.metricsview import HOST, metrics_view
from nextmavens.metrictiers import parse_since
from nextmavens.platform.auth import ApiError, Caller, audit_call, not_found
from nextmavens.platform.authz import Action, is_platform_operator
from nextmavens.platform.projectaccess import visible_project
from nextmavens.platform.service import Service


def project_metrics(service: Service, caller: Caller, org: str, ref: str, since: str = "24h") -> dict[str, Any]:
    """The metrics view (nextmavens.metricsview) of org/ref over `since`; 400 for a span it cannot read."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    return _view(service, f"{org}/{ref}", since)


def host_metrics(service: Service, caller: Caller, since: str = "24h") -> dict[str, Any]:
    """The host's own series (memory, CPU, disks, the shared containers) for a platform operator
    (authz.is_platform_operator); anyone else is refused as if there were nothing (404), audited."""
    with service.pool.connection() as conn:
        orgs = list(all_orgs(conn))
    if not is_platform_operator(caller.roles, caller.scope, orgs):
        audit_call(service, caller, "host.read", "not_found")
        raise not_found("page")
    return _view(service, HOST, since)


def _view(service: Service, scope: str, since: str) -> dict[str, Any]:
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    now = int(time.time())
    with service.pool.connection() as conn:
        points = store.read_points(conn, scope, now - seconds, now)
        current = store.latest(conn, scope)
    return metrics_view(scope, now - seconds, now, points, current)


def project_alerts(service: Service, caller: Caller, org: str, ref: str, limit: int = 20) -> list[dict[str, Any]]:
    """The project's newest alerts (5xx rises, uptime changes), newest first."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    with service.pool.connection() as conn:
        return [alert.as_json() for alert in monitoring.recent_alerts(conn, [f"{org}/{ref}"], limit)]


def project_uptime(service: Service, caller: Caller, org: str, ref: str, days: int = 30) -> dict[str, Any]:
    """Per checked name (API name, custom domains, app) its uptime per UTC day over the last `days` days, oldest
    first, and the newest state changes (the outage history)."""
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    scope = f"{org}/{ref}"
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    with service.pool.connection() as conn:
        rows = monitoring.uptime_by_day(conn, scope, since)
        events = monitoring.uptime_events(conn, scope)
    targets: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        day = {k: row[k] for k in ("day", "checks", "up", "uptime_pct")}
        targets.setdefault((row["kind"], row["name"]), []).append(day)
    return {
        "scope": scope,
        "since": since.isoformat(),
        "targets": [{"kind": kind, "name": name, "days": days_} for (kind, name), days_ in targets.items()],
        "events": events,
    }
