"""The dashboard's monitoring parts (issue 18): the project page's Metrics section with its span picker, uptime by
day and alerts, and the host (operator) page. Reads go through nextmavens.platform.projectmetrics, the functions
the /v1 routes call, so authorization and audit are theirs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from nextmavens.manifest.models import REF_PATTERN
from nextmavens.platform.auth import ApiError, Caller, service_of
from nextmavens.platform.dashboard.charts import SPANS, host_section, metrics_section, span_of, uptime_table
from nextmavens.platform.dashboard.web import check_csrf, nav, page, read_form, redirect, refused, signed_in
from nextmavens.platform.projectdomains import last_report, recheck
from nextmavens.platform.projectmetrics import host_metrics, project_alerts, project_metrics, project_uptime
from nextmavens.platform.service import Service

router = APIRouter(include_in_schema=False)

Span = Annotated[str, Query(max_length=8)]
Org = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
Ref = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]


def project_monitoring(service: Service, caller: Caller, org: str, ref: str, span: str | None) -> dict[str, Any]:
    """The project page's context for its Metrics section (the project already found visible)."""
    chosen = span_of(span)
    return {
        "metrics": metrics_section(project_metrics(service, caller, org, ref, chosen)),
        "span": chosen,
        "spans": SPANS,
        "uptime": uptime_table(project_uptime(service, caller, org, ref, 30)),
        "alerts": project_alerts(service, caller, org, ref),
        "domains": last_report(service, caller, org, ref),
    }


@router.post("/orgs/{org}/projects/{ref}/domains/recheck")
async def recheck_domains(request: Request, org: Org, ref: Ref) -> Response:
    """The Recheck button: the DNS and certificate check of the project's custom domains again, now."""
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    try:
        await run_in_threadpool(recheck, service_of(request), who.caller, org, ref)
    except ApiError as exc:
        return refused(request, who, exc, org)
    return redirect(f"/orgs/{org}/projects/{ref}#domains-h")


@router.get("/host")
def host_page(request: Request, span: Span = "24h") -> Response:
    who = signed_in(request)
    chosen = span_of(span)
    try:
        view = host_metrics(service_of(request), who.caller, chosen)
    except ApiError as exc:
        return refused(request, who, exc)
    return page(request, "host.html", title="Host", host=host_section(view), span=chosen, spans=SPANS, **nav(who))
