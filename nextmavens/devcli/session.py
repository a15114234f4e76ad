"""What every API command needs: the client of the resolved login, the project (ORG/REF or the folder's link),
and the client's errors as the CLI's expected failures."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from nextmavens.cliparts import Failure
from nextmavens.manifest.models import REF_PATTERN
from nextmavens.projectlink import ProjectLinkError, linked_project
from nextmavens.remote.api import ApiClient, RemoteError, path_of
from nextmavens.remote.credentials import LoginError, require_login

T = TypeVar("T")
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def api_client() -> ApiClient:
    try:
        login = require_login()
        return ApiClient(login.url, login.token)
    except (LoginError, RemoteError) as exc:
        raise Failure(str(exc)) from None


def project_of(named: str | None) -> tuple[str, str]:
    """(org, ref) of ORG/REF, or of the project this folder is linked to when none is named."""
    if named is None:
        try:
            named = linked_project(Path.cwd())
        except ProjectLinkError as exc:
            raise Failure(str(exc)) from None
    org, _, ref = named.partition("/")
    if not (re.fullmatch(REF_PATTERN, org) and re.fullmatch(REF_PATTERN, ref)):
        raise Failure(f"{named[:100]!r} is not ORG/REF (lowercase letters, digits and single hyphens each)")
    return org, ref


def project_path(org: str, ref: str, *rest: str) -> str:
    return path_of("v1", "projects", org, ref, *rest)


@contextmanager
def remote_failures(doing: str) -> Iterator[None]:
    """The client's errors as one-line failures: `<doing>: <the service's message>`."""
    try:
        yield
    except RemoteError as exc:
        raise Failure(f"{doing}: {exc.message}") from None


def remote_call(doing: str, call: Callable[[], T]) -> T:
    with remote_failures(doing):
        return call()
