"""What every developer command starts from: the client for the resolved login, the project it names (or the
folder's linked one), and the translation of the client's errors into the commands' messages and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from nextmavens.remote.api import ApiClient, RemoteError
from nextmavens.remote.credentials import Login, LoginError, require_login
from nextmavens.remote.output import EXIT_LOGIN, DevFailure, failure_of

F = TypeVar("F", bound=Callable[..., Any])


def api_errors(command: F) -> F:
    """A command body whose RemoteError and LoginError become DevFailure (message, exit code)."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RemoteError as exc:
            raise failure_of(exc) from None
        except LoginError as exc:
            raise DevFailure(str(exc), EXIT_LOGIN) from None

    return wrapped  # type: ignore[return-value]


def client_for(login: Login | None = None) -> ApiClient:
    login = login or require_login()
    return ApiClient(login.url, login.token)


def chosen_project(argument: str | None, folder: Path | None = None) -> tuple[str, str]:
    """(org, ref) of ORG/REF as given, else of the folder's linked project (.nextmavens/project)."""
    from nextmavens.projectlink import ProjectLinkError, check_project, linked_project

    try:
        project = check_project(argument) if argument else linked_project(folder or Path.cwd())
    except ProjectLinkError as exc:
        raise DevFailure(str(exc)) from None
    org, _, ref = project.partition("/")
    return org, ref
