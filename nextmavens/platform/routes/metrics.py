"""A project's metrics: GET /v1/projects/{org}/{ref}/metrics?since=24h (what `nextmavens metrics` prints)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nextmavens.control.store import metrics as store
from nextmavens.metricsview import metrics_view
from nextmavens.metrictiers import parse_since
from nextmavens.platform.auth import ApiError, Caller, authenticate, service_of
from nextmavens.platform.authz import Action
from nextmavens.platform.models import ERRORS
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.routes.projects import visible_project

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
    service = service_of(request)
    visible_project(service, caller, Action.READ_PROJECT, org, ref)
    try:
        seconds = parse_since(since)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    now = int(time.time())
    scope = f"{org}/{ref}"
    with service.pool.connection() as conn:
        points = store.read_points(conn, scope, now - seconds, now)
        current = store.latest(conn, scope)
    return metrics_view(scope, now - seconds, now, points, current)
