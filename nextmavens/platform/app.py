"""The ASGI application: routes, JSON errors for every failure, the request size limit, /healthz.

Every error answers {"error": {"code", "message"}}: unknown routes, wrong methods, invalid input and internal
errors too. An internal error's body and log line name only its type and where it happened: exception text may
hold a secret (a key, a connection string), so it is never written out.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nextmavens.control.crypto import MasterKeyError
from nextmavens.platform.auth import ApiError, service_of
from nextmavens.platform.dashboard import apps as dashboard_apps
from nextmavens.platform.dashboard import assets, live, pages
from nextmavens.platform.dashboard import monitoring as dashboard_monitoring
from nextmavens.platform.dashboard.web import FormRefused, SignInRequired, signin_redirect
from nextmavens.platform.emailhooks import ATTACHMENT_MAX_BODY_BYTES, ATTACHMENT_PATH, EmailHooks
from nextmavens.platform.emailsend import Mailer
from nextmavens.platform.hookreceiver import HookReceiver
from nextmavens.platform.models import ErrorBody
from nextmavens.platform.routes import (
    deploys,
    emailhooks,
    hooks,
    logs,
    me,
    memberwrites,
    migrations,
    orgs,
    projects,
    projectwrites,
    sql,
    studio,
    tokens,
)
from nextmavens.platform.routes import email as email_routes
from nextmavens.platform.routes import metrics as metrics_routes
from nextmavens.platform.routes import whatsapp as whatsapp_routes
from nextmavens.platform.service import Service, ServiceSettings

log = logging.getLogger("nextmavens.platform")

HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported"}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


HOOKS_PREFIX = "/hooks/"


class BodyTooLarge(Exception):
    pass


DEPLOY_PATH = re.compile(r"/v1/projects/[^/]+/[^/]+/apps/[^/]+/deploys")


class Guard:
    """Outermost of the application's own layers: refuses bodies over the limit (413), and turns any exception
    that escapes into a 500 that says nothing of it."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        hook_max_body_bytes: int | None = None,
        deploy_max_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hook_max_body_bytes = max_body_bytes if hook_max_body_bytes is None else hook_max_body_bytes
        self.deploy_max_body_bytes = max_body_bytes if deploy_max_body_bytes is None else deploy_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Webhooks have their own limit: Evolution's bodies carry media as base64 when an instance asks for it.
        limit = self.hook_max_body_bytes if scope["path"].startswith(HOOKS_PREFIX) else self.max_body_bytes
        if scope["method"] == "POST" and DEPLOY_PATH.fullmatch(scope["path"]):
            limit = self.deploy_max_body_bytes  # an app's `git archive`
        if scope["method"] == "POST" and scope["path"] == ATTACHMENT_PATH:
            limit = max(limit, ATTACHMENT_MAX_BODY_BYTES)  # one received attachment, base64 (platform/emailhooks.py)
        too_large = f"request bodies are limited to {limit} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._send(send, 413, "too_large", too_large)
            return
        received = 0
        started = overflow = False

        async def counted_receive() -> Message:
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if overflow:  # the framework answered a body it could not read (400): the answer is 413
                if not started:
                    started = True
                    await self._send(send, 413, "too_large", too_large)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await self._send(send, 413, "too_large", too_large)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-4:])
            log.error("internal error %s in %s %s at %s", type(exc).__name__, scope["method"], scope["path"], where)
            if not started:
                await self._send(send, 500, "internal", "internal error; the service log names where it happened")

    @staticmethod
    async def _send(send: Send, status: int, code: str, message: str) -> None:
        await error_response(status, code, message)(
            {"type": "http", "method": "GET", "path": "/", "headers": []}, _no_body, send
        )


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(settings: ServiceSettings, service: Service | None = None) -> FastAPI:
    """The application for `settings`; the service (pool, engine) opens when the server starts."""
    running = service or Service(settings)
    receiver = HookReceiver(running)
    mailer = Mailer(running)
    email_hooks = EmailHooks(mailer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running.open()
        try:
            yield
        finally:
            await receiver.close()
            await email_hooks.close()
            mailer.close()
            running.close()

    app = FastAPI(
        title="NextMavens platform",
        version="1",
        summary="One authenticated API for the platform's projects, keys, tokens and members",
        lifespan=lifespan,
        docs_url=None,  # the document only: the interactive pages load scripts from a CDN
        redoc_url=None,
    )
    app.state.service = running
    app.state.hooks = receiver
    app.state.mailer = mailer
    app.state.email_hooks = email_hooks
    app.add_middleware(
        Guard,
        max_body_bytes=settings.max_body_bytes,
        hook_max_body_bytes=settings.hook_max_body_bytes,
        deploy_max_body_bytes=settings.deploy_max_body_bytes,
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        return signin_redirect(exc)

    @app.exception_handler(FormRefused)
    async def form_refused(request: Request, exc: FormRefused) -> Response:
        return PlainTextResponse(exc.message, status_code=exc.status, headers={"Cache-Control": "no-store"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why only: the input itself is never echoed (it may be a secret sent by mistake).
        problems = [
            f"{'.'.join(str(part) for part in error.get('loc', ()) if part != 'body') or 'body'}: {error.get('msg')}"
            for error in exc.errors()[:20]
        ]
        return error_response(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("control database unavailable: %s", type(exc).__name__)
        return error_response(
            503, "unavailable", "the control database is unavailable; try again", {"Retry-After": "5"}
        )

    @app.exception_handler(MasterKeyError)
    @app.exception_handler(InvalidTag)
    async def sealed(request: Request, exc: Exception) -> JSONResponse:
        log.error("stored secrets cannot be opened: %s (is NEXTMAVENS_MASTER_KEY the right file?)", type(exc).__name__)
        return error_response(503, "secrets_unavailable", "the service cannot open the stored secrets")

    @app.get(
        "/healthz",
        tags=["health"],
        responses={503: {"model": ErrorBody, "description": "The control database does not answer"}},
    )
    def healthz(request: Request) -> dict[str, str]:
        """No authentication: for nginx and `doctor`. 503 when the control database does not answer."""
        with service_of(request).pool.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    # First: the table is walked in order for every request, and the webhooks are the busiest route by far.
    app.include_router(hooks.router)  # Evolution's webhooks: signed by the instance, not by an access token
    app.include_router(emailhooks.router)  # Resend's (Svix-signed) and the inbound mail worker's (HMAC)
    for router in (me.router, projects.router, logs.router, migrations.router, sql.router, tokens.router, orgs.router):
        app.include_router(router)
    for writes in (projectwrites.router, memberwrites.router):  # the writes through the manifest repository
        app.include_router(writes)
    app.include_router(whatsapp_routes.router)  # through Evolution: pairing and sending
    app.include_router(email_routes.router)  # through Resend: sending, and the templates to send with
    app.include_router(metrics_routes.router)
    app.include_router(deploys.router)  # app deploys: an uploaded archive, built on the host
    app.include_router(studio.router)  # Studio for a project: behind the dashboard's session (nginx auth_request)
    app.include_router(assets.router)  # the dashboard: its stylesheet, script and fonts, then its pages
    app.include_router(pages.router)
    app.include_router(dashboard_monitoring.router)  # the dashboard's host (operator) page
    app.include_router(live.router)  # the pages' live state (server-sent events)
    app.include_router(dashboard_apps.router)  # the project page's apps: their active release
    return app
