"""A project's metrics: GET /v1/projects/{org}/{ref}/metrics?since=24h (what `nextmavens metrics` prints)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nextmavens.platform.auth import Caller, authenticate, service_of
from nextmavens.platform.models import ERRORS
from nextmavens.platform.projectmetrics import project_metrics
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
