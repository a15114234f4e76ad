"""What every dashboard page shares: rendering (autoescaped Jinja), security headers, the signed-in member or a
redirect to sign in, reading a form, and the CSRF check every form passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nextmavens.platform.auth import ApiError
from nextmavens.platform.authz import ROLE_RANK, visible_orgs
from nextmavens.platform.sessioncheck import SessionMember, session_member
from nextmavens.platform.sessions import csrf_matches
from nextmavens.templates import html_environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 50
FORM_TYPE = "application/x-www-form-urlencoded"
# Scripts, styles, fonts and images from the service itself only; no framing; forms post back here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in page (then back here)."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class FormRefused(Exception):
    """A form without a valid CSRF token, from another origin, or not a form at all: 403 (or 400), nothing done."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def page(
    request: Request, template: str, status: int = 200, *, form_to: str | None = None, **context: Any
) -> HTMLResponse:
    """`form_to`: a URL whose origin a form's answer may redirect to (browsers hold that redirect to form-action)."""
    body = html_environment(TEMPLATES).get_template(template).render(request_path=request.url.path, **context)
    return HTMLResponse(body, status_code=status, headers=_with_form_origin(form_to))


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _with_form_origin(url: str | None) -> dict[str, str]:
    parts = urlsplit(url or "")
    origin = f"{parts.scheme}://{parts.netloc}"
    if not _ORIGIN.fullmatch(origin):
        return SECURITY_HEADERS
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace("form-action 'self'", f"form-action 'self' {origin}")
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


def fragment(template: str, **context: Any) -> str:
    """A part of a page (escaped like a page), to be cached and placed into one."""
    return html_environment(TEMPLATES).get_template(template).render(**context)


def redirect(path: str) -> RedirectResponse:
    """303 See Other to a path on this site (never an absolute URL: no open redirect)."""
    return RedirectResponse(local_path(path), status_code=303, headers={"Cache-Control": "no-store"})


def local_path(path: str) -> str:
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def signed_in(request: Request) -> SessionMember:
    who = session_member(request)
    if who is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back if request.method == "GET" else "/")
    return who


def signin_redirect(error: SignInRequired) -> Response:
    return redirect(f"/signin?next={quote(error.back_to, safe='/')}")


def same_origin(request: Request) -> bool:
    """A browser's Origin (when sent) names this host: a form posted from another site is refused."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form (each field's first value), or FormRefused."""
    if not same_origin(request):
        raise FormRefused(403, "this form came from another site; nothing was done")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise FormRefused(400, "expected a form")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused(400, "the form is too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "the form could not be read") from None
    return {name: values[0] for name, values in fields.items()}


def check_csrf(expected: str, form: dict[str, str]) -> None:
    if not csrf_matches(expected, form.get("csrf")):
        raise FormRefused(403, "the form's security token is missing or expired: reload the page and try again")


def nav(who: SessionMember, current_org: str | None = None) -> dict[str, Any]:
    """The header's context: the member, their orgs (only theirs), the org shown, the session's CSRF token."""
    orgs = visible_orgs(who.caller.roles, who.caller.scope)
    return {
        "member": who.member,
        "orgs": sorted(orgs),
        "roles": orgs,
        "current_org": current_org,
        "csrf": who.csrf,
    }


def is_admin(who: SessionMember, org: str) -> bool:
    return ROLE_RANK.get(who.caller.roles.get(org, ""), 0) >= ROLE_RANK["admin"]


def refused(request: Request, who: SessionMember | None, error: ApiError, org: str | None = None) -> HTMLResponse:
    """The page for a refused request: the API error's status and message, with the member's navigation."""
    context = nav(who, org) if who is not None else {"member": None, "orgs": [], "current_org": None, "csrf": ""}
    return page(request, "message.html", error.status, title="Not possible", message=error.message, **context)
