"""Studio for a project (README "Studio for a project"): the dashboard's "Open Studio", the cookie on the Studio
name, nginx's `auth_request` for every request to a project's Studio, and the meta gate's `auth_request` that swaps
Studio's connection for the project's owner role.

- POST /studio/open/{org}/{ref} (the project page's "Open Studio" form, with its CSRF token): dashboard session,
  admins and owners (authz `studio.open`), the project applied and active; audited; 303 to the Studio name's enter
  path with a ticket signed for this session and project. It may start a container, so never on a GET (the session
  cookie is SameSite=Lax: another site's link is a top-level GET): GET only goes to the project page and its button.
- GET /studio/enter?ticket=: sets `nm_studio` (the signed grant) on the Studio name, 303 to Studio's start page.
  On the host the project's Studio is started first when it does not run (studiofleet), or a page says the host
  runs as many as it may (503).
- GET /studio/auth: 204 with the project's Studio upstream when the cookie is genuine, its dashboard session live
  (sessioncheck) and authz still allows; 401 without a live grant, 403 when refused or no Studio runs for it (one
  stopped when idle: open it again from the dashboard).
- GET /studio/meta-auth: 204 with the owner-role connection encrypted with postgres-meta's CRYPTO_KEY when
  Studio's `x-connection-encrypted` proves one active project; 403 otherwise. nginx serves it to the meta gate
  only (the platform's own name answers 404 for it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from psycopg.conninfo import conninfo_to_dict
from starlette.concurrency import run_in_threadpool

from nextmavens.control.crypto import load_master_key
from nextmavens.control.store import access
from nextmavens.files import read_secret_file
from nextmavens.naming import project_names
from nextmavens.platform.auth import ApiError, guard, refuse_missing, service_of
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.dashboard.web import check_csrf, nav, page, read_form, redirect, signed_in
from nextmavens.platform.routes import OrgSlug, ProjectRef
from nextmavens.platform.service import Service
from nextmavens.platform.sessioncheck import SessionMember, lookup_hash
from nextmavens.platform.sessions import COOKIE as SESSION_COOKIE
from nextmavens.platform.sessions import cookie_header, secret_hash
from nextmavens.platform.studiofleet import AtCapacity, StudioUnavailable
from nextmavens.platform.studiogate import (
    CONNECTION_HEADER,
    COOKIE,
    COOKIE_TTL_S,
    ENTER_PATH,
    GATE_ANSWER_HEADER,
    TICKET_TTL_S,
    UPSTREAM_HEADER,
    StudioGrant,
    StudioKeys,
    cryptojs_decrypt,
    cryptojs_encrypt,
    login_role,
    read_grant,
    role_connection,
    sign_grant,
    studio_login,
)

router = APIRouter(include_in_schema=False)

START_PAGE = "/project/default"  # self-hosted Studio's one project


@lru_cache(maxsize=4)
def _keys(path: Path) -> StudioKeys:
    return StudioKeys(load_master_key(path))


def studio_keys(service: Service) -> StudioKeys:
    return _keys(service.settings.master_key)


def _active(service: Service, org: str, ref: str) -> bool:
    view = service.catalog().views.get((org, ref))
    return view is not None and view.applied_state == "active"


def _studio_url(service: Service) -> str:
    url = service.settings.studio_url
    if url is None:
        raise ApiError(503, "studio_off", "Studio for projects is not configured on this host")
    return url.rstrip("/")


@router.get("/studio/open/{org}/{ref}")
def open_studio_page(org: OrgSlug, ref: ProjectRef) -> Response:
    """A link (or another site's) starts nothing: the project page, whose button posts the form."""
    return redirect(f"/orgs/{org}/projects/{ref}")


@router.post("/studio/open/{org}/{ref}")
async def open_studio(request: Request, org: OrgSlug, ref: ProjectRef) -> Response:
    who = await run_in_threadpool(signed_in, request)
    check_csrf(who.csrf, await read_form(request))
    return await run_in_threadpool(_open_studio, request, who, org, ref)


def _open_studio(request: Request, who: SessionMember, org: str, ref: str) -> Response:
    service = service_of(request)
    base = _studio_url(service)
    guard(service, who.caller, Action.OPEN_STUDIO, org, ref)
    if not _active(service, org, ref):
        raise refuse_missing(service, who.caller, Action.OPEN_STUDIO, org, ref)
    if service.studios is not None:
        try:
            service.studios.open(ref, org)
        except AtCapacity as exc:
            message = (
                f"{exc.running} Studios are open on this host, the most it runs at once ({exc.cap}). Each stops after "
                f"{round(service.settings.studio_idle_s / 60)} minutes unused: try again then."
            )
            return page(request, "message.html", 503, title="Studio is busy", message=message, **nav(who, org))
        except StudioUnavailable:
            message = "The project's Studio could not be started. Try again; if it persists, the host's log says why."
            return page(request, "message.html", 503, title="Studio did not start", message=message, **nav(who, org))
    grant = StudioGrant(org, ref, secret_hash(request.cookies[SESSION_COOKIE]), int(time.time()) + TICKET_TTL_S)
    with service.pool.connection() as conn:
        access.write_audit(conn, who.member, Action.OPEN_STUDIO.value, "ok", org, ref, {"session": who.session.id})
    ticket = sign_grant(studio_keys(service).grant, "ticket", grant)
    return RedirectResponse(f"{base}{ENTER_PATH}?ticket={quote(ticket)}", status_code=303)


@router.get("/studio/enter")
def enter_studio(request: Request, ticket: Annotated[str, Query(max_length=512)] = "") -> Response:
    service = service_of(request)
    keys = studio_keys(service)
    now = time.time()
    grant = read_grant(keys.grant, "ticket", ticket, now)
    if grant is None:
        raise ApiError(401, "unauthorized", "this Studio link is invalid or expired: open Studio from the dashboard")
    lifetime = min(COOKIE_TTL_S, int(service.settings.session_max_s))
    value = sign_grant(keys.grant, "cookie", replace(grant, expires_at=int(now) + lifetime))
    response = RedirectResponse(START_PAGE, status_code=303)
    response.headers["Set-Cookie"] = cookie_header(COOKIE, value, lifetime, service.settings.cookie_secure)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/studio/auth")
def studio_auth(request: Request) -> Response:
    service = service_of(request)
    grant = read_grant(studio_keys(service).grant, "cookie", request.cookies.get(COOKIE, ""), time.time())
    found = None if grant is None else lookup_hash(request, grant.session_hash)
    if grant is None or found is None:
        return Response(status_code=401)
    caller, _ = found
    if decide(caller.roles, caller.scope, Action.OPEN_STUDIO, grant.org, grant.ref) is not Decision.ALLOW:
        return Response(status_code=403)
    if not _active(service, grant.org, grant.ref):  # before the touch: a refused request keeps no Studio running
        return Response(status_code=403)
    if service.studios is not None:
        upstream = service.studios.touch(grant.ref)  # each request through Studio keeps it from idling out
    else:
        upstream = dict(service.settings.studio_upstreams).get(grant.ref)
    if upstream is None:
        return Response(status_code=403)
    return Response(status_code=204, headers={UPSTREAM_HEADER: upstream})


def meta_db_address(service: Service) -> tuple[str, int]:
    """The database's host and port as postgres-meta reaches it (Studio's gate and the type generator)."""
    configured = service.settings.studio_db_address
    if configured:
        host, _, port = configured.rpartition(":")
        return host, int(port)
    params = conninfo_to_dict(service.settings.dsn)
    return str(params.get("host") or "localhost"), int(params.get("port") or 5432)


@router.get("/studio/meta-auth")
def meta_auth(request: Request) -> Response:
    service = service_of(request)
    settings = service.settings
    header = request.headers.get(CONNECTION_HEADER, "")
    if settings.studio_meta_key_file is None or not header or len(header) > 4096:
        return Response(status_code=403)
    keys = studio_keys(service)
    connection = cryptojs_decrypt(header, keys.studio_crypto)
    if connection is None:
        return Response(status_code=403)
    active = {ref: org for (org, ref), view in service.catalog().views.items() if view.applied_state == "active"}
    login = studio_login(connection, keys.token, {project_names(ref).database: ref for ref in active})
    if login is None:
        return Response(status_code=403)
    org = active[login.ref]
    role = login_role(login)
    # The sealed passwords, kept in memory a short while (RoleLogins: ttl, forgotten at a key rotation): the gate
    # is asked for every request Studio makes, and unsealing costs a control database round trip each time.
    try:
        password = service.sql_logins.passwords(org, login.ref, lambda: _passwords(service, login.ref)).get(role)
    except LookupError:
        password = None
    if password is None:
        return Response(status_code=403)
    host, port = meta_db_address(service)
    meta_key = read_secret_file(settings.studio_meta_key_file, "postgres-meta's CRYPTO_KEY file")
    encrypted = cryptojs_encrypt(role_connection(host, port, login.ref, role, password), meta_key.strip())
    return Response(status_code=204, headers={GATE_ANSWER_HEADER: encrypted, "Cache-Control": "no-store"})


def _passwords(service: Service, ref: str) -> dict[str, str]:
    with service.engine.secrets() as store:
        secrets = store.project_secrets(ref)
    if secrets is None:
        raise LookupError(ref)  # not cached: a project applied a moment later is found at its next request
    return dict(secrets.passwords)
