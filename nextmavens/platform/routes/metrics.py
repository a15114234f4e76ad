"""A project's metrics: GET /v1/projects/{org}/{ref}/metrics?since=24h (what `nextmavens metrics` prints), its
uptime per day (`/uptime?days=30`) and its stored alerts (`/alerts`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.models import ERRORS
from nextmavens.platform.projectmetrics import project_alerts, project_metrics, project_uptime
from nextmavens.platform.routes import OrgSlug, ProjectRef

router = APIRouter(tags=["metrics"], responses=ERRORS)


@router.get("/v1/projects/{org}/{ref}/metrics")
def get_metrics(
    org: OrgSlug,
    ref: ProjectRef,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    since: Annotated[str, Query(max_length=8, description="90m, 24h, 7d or 1y")] = "24h",
) -> dict[str, Any]:
    """Current values and each series over `since` in 60 buckets: requests, 4xx/5xx, latency percentiles,
    database size, connections and transactions, the containers' CPU and memory. A project the caller cannot see
    is 404."""
    return project_metrics(service_of(request), caller, org, ref, since)


@router.get("/v1/projects/{org}/{ref}/uptime")
def get_uptime(
    org: OrgSlug,
    ref: ProjectRef,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    days: Annotated[int, Query(ge=1, le=366, description="UTC days back, today included")] = 30,
) -> dict[str, Any]:
    """Each checked public name of the project (its API name, custom domains, app) with its checks, successes and
    uptime percentage per UTC day, and the newest state changes. A project the caller cannot see is 404."""
    return project_uptime(service_of(request), caller, org, ref, days)


@router.get("/v1/projects/{org}/{ref}/alerts")
def get_alerts(
    org: OrgSlug,
    ref: ProjectRef,
    request: Request,
    caller: Annotated[Caller, Depends(authenticate)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The project's stored alerts (a rise of 5xx with its top paths and log lines, uptime changes), newest
    first, as sent to Telegram. A project the caller cannot see is 404."""
    return {"alerts": project_alerts(service_of(request), caller, org, ref, limit)}
