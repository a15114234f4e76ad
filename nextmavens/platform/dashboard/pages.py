"""The dashboard's pages. Each one calls the functions the /v1 routes call (authorization, audit and writes are
theirs); a refusal (ApiError) is shown as the page's message with its status."""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from nextmavens.control.store import access, projects
from nextmavens.control.store import backups as records
from nextmavens.manifest.models import INSTANCE_NAME_PATTERN, REF_PATTERN
from nextmavens.monitor.projecthealth import project_health
from nextmavens.platform import projectwrite, signin, tokenops, totp, whatsappops
from nextmavens.platform.auth import ApiError, client_address, guard, service_of
from nextmavens.platform.authz import Action, Decision, decide
from nextmavens.platform.catalog import Catalog
from nextmavens.platform.dashboard.apps import LOG_SERVICES, declared_apps
from nextmavens.platform.dashboard.monitoring import project_monitoring
from nextmavens.platform.dashboard.web import (
    SECURITY_HEADERS,
    check_csrf,
    fragment,
    is_admin,
    local_path,
    nav,
    page,
    read_form,
    redirect,
    refused,
    signed_in,
)
from nextmavens.platform.passwords import WeakPassword
from nextmavens.platform.projectaccess import connection_strings, project_detail, project_keys
from nextmavens.platform.projectlogs import open_stream
from nextmavens.platform.projectmigrations import migration_history
from nextmavens.platform.sessioncheck import SessionMember, lookup
from nextmavens.platform.sessions import (
    COOKIE,
    PRESIGN_COOKIE,
    cookie_header,
    csrf_matches,
    csrf_token,
    looks_like_secret,
    new_secret,
)
from nextmavens.whatsapp.qr import qr_png

router = APIRouter(include_in_schema=False)

Org = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
Ref = Annotated[str, Path(pattern=REF_PATTERN, max_length=63)]
Instance = Annotated[str, Path(pattern=INSTANCE_NAME_PATTERN, max_length=40)]


# Sign-in, second factor, invite links, sign-out ------------------------------------------------------------------


def presign_value(request: Request) -> tuple[str, bool]:
    """The pre-sign-in cookie's value (made when missing): the sign-in form's token is derived from it."""
    value = request.cookies.get(PRESIGN_COOKIE, "")
    if looks_like_secret(value):
        return value, False
    return new_secret(), True


def signin_page(request: Request, error: str | None = None, status: int = 200, next_path: str = "/") -> Response:
    value, fresh = presign_value(request)
    response = page(
        request,
        "signin.html",
        status,
        title="Sign in",
        member=None,
        orgs=[],
        current_org=None,
        csrf=csrf_token(value),
        error=error,
        next_path=local_path(next_path),
    )
    if fresh:
        secure = service_of(request).settings.cookie_secure
        response.headers.append("set-cookie", cookie_header(PRESIGN_COOKIE, value, 3600, secure))
    return response


@router.get("/signin")
def signin_form(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:  # noqa: A002
    return signin_page(request, next_path=next)


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    form = await read_form(request)
    presign = request.cookies.get(PRESIGN_COOKIE, "")
    next_path = local_path(form.get("next", "/"))
    if not looks_like_secret(presign) or not csrf_matches(csrf_token(presign), form.get("csrf")):
        return signin_page(request, "The form expired: try again.", 403, next_path)
    service = service_of(request)
    try:
        started = await run_in_threadpool(
            signin.sign_in, service, form.get("email", ""), form.get("password", ""), client_address(request)
        )
    except signin.SigninRefused as exc:
        response = signin_page(request, exc.message, 429 if exc.retry_after else 401, next_path)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = redirect("/signin/code?next=" + next_path if started.needs_code else next_path)
    settings = service.settings
    response.headers.append(
        "set-cookie", cookie_header(COOKIE, started.secret, int(settings.session_max_s), settings.cookie_secure)
    )
    return response


@router.get("/signin/code")
def code_form(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:  # noqa: A002
    pending = lookup(request, verified=False)
    if pending is None:
        return redirect("/signin")
    return page(
        request,
        "code.html",
        title="Two-factor code",
        member=None,
        orgs=[],
        current_org=None,
        csrf=pending.csrf,
        error=None,
        next_path=local_path(next),
    )


@router.post("/signin/code")
async def code_submit(request: Request) -> Response:
    pending = await run_in_threadpool(lookup, request, False)
    if pending is None:
        return redirect("/signin")
    form = await read_form(request)
    check_csrf(pending.csrf, form)
    next_path = local_path(form.get("next", "/"))
    try:
        await run_in_threadpool(
            signin.second_factor,
            service_of(request),
            pending.session.id,
            pending.member,
            form.get("code", ""),
            client_address(request),
        )
    except signin.SigninRefused as exc:
        return page(
            request,
            "code.html",
            429 if exc.retry_after else 401,
            title="Two-factor code",
            member=None,
            orgs=[],
            current_org=None,
            csrf=pending.csrf,
            error=exc.message,
            next_path=next_path,
        )
    return redirect(next_path)


def cleared(response: Response, request: Request) -> Response:
    response.headers.append("set-cookie", cookie_header(COOKIE, "", 0, service_of(request).settings.cookie_secure))
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    who = await run_in_threadpool(lookup, request, False)
    if who is None:
        return redirect("/signin")
    form = await read_form(request)
    check_csrf(who.csrf, form)
    service = service_of(request)
    if form.get("everywhere") == "1":
        await run_in_threadpool(signin.sign_out_everywhere, service, who.member)
    else:
        await run_in_threadpool(signin.sign_out, service, who.session.id, who.member)
    return cleared(redirect("/signin"), request)


@router.get("/invite/{secret}")
def invite_form(request: Request, secret: Annotated[str, Path(max_length=64)]) -> Response:
    service = service_of(request)
    found = signin.invite_member(service, secret) if looks_like_secret(secret) else None
    if found is None:
        return page(
            request,
            "message.html",
            404,
            title="Link not valid",
            message="This link was used or has expired. Ask an operator for a new one.",
            member=None,
            orgs=[],
            current_org=None,
            csrf="",
        )
    # The link's own secret is the form's token: only who holds the link can post it.
    return page(
        request,
        "invite.html",
        title="Set your password",
        invited=found[1],
        member=None,
        orgs=[],
        current_org=None,
        csrf=csrf_token(secret),
        error=None,
    )


@router.post("/invite/{secret}")
async def invite_submit(request: Request, secret: Annotated[str, Path(max_length=64)]) -> Response:
    form = await read_form(request)
    check_csrf(csrf_token(secret), form)
    service = service_of(request)
    found = await run_in_threadpool(signin.invite_member, service, secret) if looks_like_secret(secret) else None
    if found is None:
        return redirect(f"/invite/{secret}" if looks_like_secret(secret) else "/signin")
    try:
        await run_in_threadpool(
            signin.accept_invite, service, found[0], found[1], form.get("password", ""), form.get("confirm", "")
        )
    except WeakPassword as exc:
        return page(
            request,
            "invite.html",
            422,
            title="Set your password",
            invited=found[1],
            member=None,
            orgs=[],
            current_org=None,
            csrf=csrf_token(secret),
            error=str(exc),
        )
    return cleared(redirect("/signin"), request)


# Orgs and their projects ------------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    who = signed_in(request)
    orgs = nav(who)["orgs"]
    return redirect(f"/orgs/{orgs[0]}") if orgs else redirect("/tokens")


@router.get("/switch")
def switch(request: Request, org: Annotated[str, Query(pattern=REF_PATTERN, max_length=63)]) -> Response:
    signed_in(request)
    return redirect(f"/orgs/{org}")


class RowsCache:
    """The project list's rows as HTML, rendered again only when what they show changes: the catalog (a new
    object when manifests or applies change), the health record, the org's last good backups, the role. The rows
    hold nothing of the session (their buttons post through one form carrying the CSRF token)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._rows: OrderedDict[tuple[Any, ...], tuple[Catalog, Markup]] = OrderedDict()

    def get(self, key: tuple[Any, ...], catalog: Catalog) -> Markup | None:
        with self._lock:
            found = self._rows.get(key)
            if found is None or found[0] is not catalog:
                return None
            self._rows.move_to_end(key)
            return found[1]

    def put(self, key: tuple[Any, ...], catalog: Catalog, html: Markup) -> None:
        with self._lock:
            self._rows[key] = (catalog, html)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)


ROWS = RowsCache()


def org_rows(request: Request, who: SessionMember, org: str) -> Markup:
    """The org's projects the member sees, with state, health, last apply and last good backup, as table rows."""
    service = service_of(request)
    caller = who.caller
    catalog = service.catalog()
    health = service.health_state()
    last_good = service.last_good_backups()
    admin = is_admin(who, org)
    prefix = f"{org}/"
    backups = tuple(sorted((target, when) for target, when in last_good.items() if target.startswith(prefix)))
    # authz.decide on a project of `org` reads only the member's role there and the credential's scope: with the
    # catalog, they decide which rows show, so they key the cache (decide runs for every row on a miss).
    cache_key = (id(catalog), org, caller.roles.get(org), caller.scope, health.get("checked_at"), backups)
    cached = ROWS.get(cache_key, catalog)
    if cached is not None:
        return cached
    keys = [
        key
        for key in catalog.views
        if key[0] == org and decide(caller.roles, caller.scope, Action.READ_PROJECT, *key) is Decision.ALLOW
    ]
    now = time.time()
    rows = []
    for key in keys:
        view = catalog.views[key]
        backup = last_good.get(f"{org}/{view.ref}")
        rows.append(
            {
                "ref": view.ref,
                "name": view.name,
                "declared": view.declared_state or "not declared",
                "applied": view.applied_state or "not applied",
                "health": project_health(health, org, view.ref, now)["state"],
                "last_apply": view.last_applied_at.strftime("%Y-%m-%d %H:%M") if view.last_applied_at else "never",
                "last_backup": backup.strftime("%Y-%m-%d %H:%M") if backup else "none",
            }
        )
    html = Markup(fragment("org_rows.html", rows=rows, org=org, admin=admin))
    ROWS.put(cache_key, catalog, html)
    return html


@router.get("/orgs/{org}")
def org_page(request: Request, org: Org) -> Response:
    who = signed_in(request)
    if decide(who.caller.roles, who.caller.scope, Action.READ_MEMBERS, org) is not Decision.ALLOW:
        return refused(request, who, ApiError(404, "not_found", f"no org {org}"))
    return page(
        request,
        "org.html",
        title=f"Projects in {org}",
        rows_html=org_rows(request, who, org),
        admin=is_admin(who, org),
        form={},
        error=None,
        **nav(who, org),
    )


@router.post("/orgs/{org}/projects")
async def create_project(request: Request, org: Org) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    ref = form.get("ref", "").strip()
    urls = [line.strip() for line in form.get("redirect_urls", "").splitlines() if line.strip()][:50]
    try:
        await run_in_threadpool(
            projectwrite.create_project,
            service_of(request),
            who.caller,
            org,
            ref,
            form.get("name", "").strip()[:200],
            form.get("site_url", "").strip()[:2000],
            urls,
            form.get("disable_signup") == "on",
        )
    except ApiError as exc:
        if exc.status == 404:
            return refused(request, who, exc, org)
        rows = await run_in_threadpool(org_rows, request, who, org)
        return page(
            request,
            "org.html",
            exc.status,
            title=f"Projects in {org}",
            rows_html=rows,
            admin=is_admin(who, org),
            form=form,
            error=exc.message,
            **nav(who, org),
        )
    return redirect(f"/orgs/{org}/projects/{ref}")


@router.post("/orgs/{org}/projects/{ref}/state")
async def change_state(request: Request, org: Org, ref: Ref) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    try:
        await run_in_threadpool(
            projectwrite.change_state, service_of(request), who.caller, org, ref, form.get("state", "")
        )
    except ApiError as exc:
        return refused(request, who, exc, org)
    return redirect(local_path(form.get("back", f"/orgs/{org}")))


# One project ------------------------------------------------------------------------------------------------------


def optional(read: Any, *args: Any) -> tuple[Any, str | None]:
    """(value, None), or (None, the refusal's message) for a part of the page that cannot be read now."""
    try:
        return read(*args), None
    except ApiError as exc:
        return None, exc.message


def project_context(
    request: Request, who: SessionMember, org: str, ref: str, span: str | None = None
) -> dict[str, Any]:
    service = service_of(request)
    caller = who.caller
    detail = project_detail(service, caller, org, ref)  # 404 for a project the member cannot see
    keys, keys_error = optional(project_keys, service, caller, org, ref)
    if keys is not None:
        keys.pop("service_role_key", None)  # shown only after the password, on its own page
    strings, _ = optional(connection_strings, service, caller, org, ref)
    history, history_error = optional(migration_history, service, caller, org, ref)
    allowed = {
        action: decide(caller.roles, caller.scope, action, org, ref) is Decision.ALLOW
        for action in (Action.READ_SERVICE_KEY, Action.SUSPEND_PROJECT, Action.MANAGE_WHATSAPP)
    }
    sees_members = decide(caller.roles, caller.scope, Action.READ_MEMBERS, org) is Decision.ALLOW
    sees_audit = decide(caller.roles, caller.scope, Action.READ_AUDIT, org) is Decision.ALLOW
    with service.pool.connection() as conn:
        members = projects.org_members(conn, org) if sees_members else ()
        audit = [e for e in access.audit_entries(conn, org, 500) if e["project"] == ref][:20] if sees_audit else []
        backups = [b for b in records.listing(conn, f"{org}/{ref}")][:10]
        drill = next((d for d in records.last_verifications(conn) if d["target"] == f"{org}/{ref}"), None)
    instances, whatsapp_error = optional(whatsappops.list_instances, service, caller, org, ref)
    return {
        "org": org,
        "ref": ref,
        "detail": detail,
        "keys": keys,
        "keys_error": keys_error,
        "strings": strings or {},
        "migrations": history or [],
        "migrations_error": history_error,
        "can_reveal": allowed[Action.READ_SERVICE_KEY],
        "can_suspend": allowed[Action.SUSPEND_PROJECT],
        "can_pair": allowed[Action.MANAGE_WHATSAPP],
        "project_members": members,
        "audit": audit,
        "sees_audit": sees_audit,
        "backups": backups,
        "drill": drill,
        "instances": (instances or {}).get("instances", []),
        "whatsapp_error": whatsapp_error,
        **project_monitoring(service, caller, org, ref, span),
        "apps": declared_apps(service, org, ref),
        "service_key": None,
        "reveal_error": None,
    }


@router.get("/orgs/{org}/projects/{ref}")
def project_page(
    request: Request, org: Org, ref: Ref, span: Annotated[str, Query(max_length=8)] = "24h"
) -> Response:
    who = signed_in(request)
    try:
        context = project_context(request, who, org, ref, span)
    except ApiError as exc:
        return refused(request, who, exc, org)
    studio = service_of(request).settings.studio_url  # "Open Studio" posts here and is redirected there
    return page(request, "project.html", title=f"{org}/{ref}", form_to=studio, **context, **nav(who, org))


@router.post("/orgs/{org}/projects/{ref}/service-key")
async def reveal_service_key(request: Request, org: Org, ref: Ref) -> Response:
    """The service_role key, for admins and owners, after their password again (audited either way)."""
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    service = service_of(request)

    def reveal() -> dict[str, Any]:
        context = project_context(request, who, org, ref)
        if not context["can_reveal"]:
            guard(service, who.caller, Action.READ_SERVICE_KEY, org, ref)
        try:
            signin.confirm_password(service, who.member, form.get("password", ""), client_address(request))
        except signin.SigninRefused as exc:
            context["reveal_error"] = exc.message
            return context
        keys = project_keys(service, who.caller, org, ref)
        context["service_key"] = keys.get("service_role_key")
        with service.pool.connection() as conn:
            access.write_audit(
                conn, who.member, "keys.reveal_service_role", "ok", org, ref, {"session": who.session.id}
            )
        return context

    try:
        context = await run_in_threadpool(reveal)
    except ApiError as exc:
        return refused(request, who, exc, org)
    status = 401 if context["reveal_error"] else 200
    studio = service.settings.studio_url
    return page(request, "project.html", status, title=f"{org}/{ref}", form_to=studio, **context, **nav(who, org))


@router.get("/orgs/{org}/projects/{ref}/logs")
async def logs_tail(
    request: Request, org: Org, ref: Ref, service: Annotated[str, Query(pattern=LOG_SERVICES)] = "rest"
) -> Response:
    """The live tail (server-sent events) the project page's script reads with EventSource."""
    who = await run_in_threadpool(signed_in, request)
    try:
        return await open_stream(service_of(request), who.caller, org, ref, service, "10m", True)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=SECURITY_HEADERS)


# WhatsApp ---------------------------------------------------------------------------------------------------------


@router.get("/orgs/{org}/projects/{ref}/whatsapp/{instance}")
def pairing_page(request: Request, org: Org, ref: Ref, instance: Instance) -> Response:
    who = signed_in(request)
    service = service_of(request)
    try:
        state = whatsappops.status(service, who.caller, org, ref, instance)
    except ApiError as exc:
        return refused(request, who, exc, org)
    return page(
        request,
        "whatsapp.html",
        title=f"WhatsApp {instance}",
        org=org,
        ref=ref,
        instance=instance,
        state=state,
        can_pair=is_admin(who, org),
        sent=None,
        error=None,
        **nav(who, org),
    )


@router.post("/orgs/{org}/projects/{ref}/whatsapp/{instance}/pairing")
async def pairing_step(request: Request, org: Org, ref: Ref, instance: Instance) -> Response:
    """One step of pairing for the page's script: connect (a fresh QR code) until the state is open, then the
    number. JSON; the QR code as a data: URL of its PNG."""
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    service = service_of(request)

    def step() -> dict[str, Any]:
        answer = whatsappops.connect(service, who.caller, org, ref, instance, None)
        if answer["state"] == "open":
            paired = whatsappops.status(service, who.caller, org, ref, instance)
            return {"state": "open", "number": paired["number"], "profile_name": paired["profile_name"]}
        png = qr_png(answer["code"]) if answer["code"] else None
        return {"state": answer["state"], "qr": png_data_url(png) if png else None}

    try:
        body = await run_in_threadpool(step)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=SECURITY_HEADERS)
    return JSONResponse(body, headers=SECURITY_HEADERS)


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


@router.post("/orgs/{org}/projects/{ref}/whatsapp/{instance}/send")
async def send_test(request: Request, org: Org, ref: Ref, instance: Instance) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    service = service_of(request)
    number = form.get("number", "").strip().lstrip("+")
    text = form.get("text", "").strip()[:4096] or "Test message from NextMavens"
    sent = error = None
    status = 200
    try:
        if not number.isdigit() or not 8 <= len(number) <= 15:
            raise ApiError(422, "invalid_request", "number: digits, country code first (E.164 without +)")
        sent = (await run_in_threadpool(whatsappops.send, service, who.caller, org, ref, instance, number, text))[
            "message_id"
        ]
        state = await run_in_threadpool(whatsappops.status, service, who.caller, org, ref, instance)
    except ApiError as exc:
        if exc.status == 404:
            return refused(request, who, exc, org)
        error, status = exc.message, exc.status
        state = {"state": "unknown", "number": None, "profile_name": None}
    return page(
        request,
        "whatsapp.html",
        status,
        title=f"WhatsApp {instance}",
        org=org,
        ref=ref,
        instance=instance,
        state=state,
        can_pair=is_admin(who, org),
        sent=sent,
        error=error,
        **nav(who, org),
    )


# Tokens and the account -------------------------------------------------------------------------------------------


def tokens_page(request: Request, who: SessionMember, status: int = 200, **extra: Any) -> Response:
    listed = tokenops.list_tokens(service_of(request), who.caller)
    own = [t for t in listed if t.member == who.member and t.revoked_at is None]
    values: dict[str, Any] = {"created": None, "error": None, **extra}
    return page(request, "tokens.html", status, title="Access tokens", tokens=own, **values, **nav(who))


@router.get("/tokens")
def tokens(request: Request) -> Response:
    return tokens_page(request, signed_in(request))


@router.post("/tokens")
async def create_token(request: Request) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    target = form.get("project", "").strip()
    org, _, project = target.partition("/")
    try:
        created = await run_in_threadpool(
            tokenops.create_token,
            service_of(request),
            who.caller,
            form.get("name", "").strip()[:100],
            org or None,
            project or None,
            form.get("read_only") == "on",
            form.get("expires", "90d").strip()[:20] or "90d",
        )
    except ApiError as exc:
        return await run_in_threadpool(tokens_page, request, who, exc.status, error=exc.message)
    return await run_in_threadpool(tokens_page, request, who, 201, created=created)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: Annotated[str, Path(max_length=40)]) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    try:
        await run_in_threadpool(tokenops.revoke_token, service_of(request), who.caller, token_id)
    except ApiError as exc:
        return await run_in_threadpool(tokens_page, request, who, exc.status, error=exc.message)
    return redirect("/tokens")


@router.get("/account")
def account(request: Request) -> Response:
    who = signed_in(request)
    enabled = signin.has_totp(service_of(request), who.member)
    secret = None if enabled else totp.new_secret()
    return account_page(request, who, enabled, secret)


def account_page(
    request: Request, who: SessionMember, enabled: bool, secret: str | None, status: int = 200, error: str | None = None
) -> Response:
    qr = None
    if secret is not None:
        qr = png_data_url(qr_png(totp.provisioning_uri(secret, who.member)))
    return page(
        request,
        "account.html",
        status,
        title="Account",
        enabled=enabled,
        secret=secret,
        qr=qr,
        error=error,
        **nav(who),
    )


@router.post("/account/totp")
async def account_totp(request: Request) -> Response:
    who = await run_in_threadpool(signed_in, request)
    form = await read_form(request)
    check_csrf(who.csrf, form)
    service = service_of(request)
    if form.get("disable") == "1":
        try:
            await run_in_threadpool(
                signin.confirm_password, service, who.member, form.get("password", ""), client_address(request)
            )
        except signin.SigninRefused as exc:
            return account_page(request, who, True, None, 401, exc.message)
        await run_in_threadpool(signin.disable_totp, service, who.member)
        return redirect("/account")
    secret = form.get("secret", "").strip()
    if len(secret) != 32 or not secret.isalnum():
        return account_page(request, who, False, totp.new_secret(), 400, "the setup expired: scan the new code")
    if not await run_in_threadpool(signin.enable_totp, service, who.member, secret, form.get("code", "")):
        return account_page(request, who, False, secret, 422, "that code is not right: try the next one")
    return redirect("/account")
