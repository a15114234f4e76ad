"""The plumbing every `nextmavens` command shares: exit codes, the expected-failure exception, the common
options, and turning the engine's and the edge's expected failures into clear messages.

It sits below the command modules (nextmavens/cli.py and the command groups it registers, e.g. the doctor's), so
they all import it and nothing here imports them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import psycopg
from cryptography.exceptions import InvalidTag

from nextmavens import ui
from nextmavens.clioptions import edge_option as edge_option  # one definition, light for the developer commands
from nextmavens.control.crypto import DEFAULT_MASTER_KEY, MasterKeyError
from nextmavens.control.locks import LockTimeout
from nextmavens.engine.destroy import DestroyError
from nextmavens.engine.plan import PlanError
from nextmavens.engine.secretstore import SecretStore
from nextmavens.engine.session import Engine, EngineConfig
from nextmavens.keys import KeyLifetimeError, key_lifetime_days
from nextmavens.manifest.loader import ManifestErrors, ManifestSet, load_manifests

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
DEFAULT_DUMP_DIR = "/var/backups/nextmavens"


class Failure(click.ClickException):
    """An expected failure: message to stderr, exit 1, no traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        ui.fail(self.message)


DEFAULT_LOCK_TIMEOUT = 60.0  # seconds to wait for another apply's lock


def projects_option(func: F) -> F:
    return click.option(
        "--projects",
        "projects_dir",
        type=click.Path(path_type=Path),
        default="projects",
        show_default=True,
        envvar="NEXTMAVENS_PROJECTS",
        help="Folder holding <org>/<project>.yaml manifests.",
    )(func)


def database_options(func: F) -> F:
    """--dsn and --master-key: what a command needs to read the control database and its sealed secrets."""
    func = click.option("--dsn", envvar="NEXTMAVENS_DSN", help="Superuser connection string [env NEXTMAVENS_DSN].")(
        func
    )
    func = click.option(
        "--master-key",
        "master_key",
        type=click.Path(path_type=Path),
        envvar="NEXTMAVENS_MASTER_KEY",
        default=DEFAULT_MASTER_KEY,
        show_default=True,
        help="AES key file sealing secrets [env NEXTMAVENS_MASTER_KEY].",
    )(func)
    return func


def connection_options(func: F) -> F:
    func = database_options(func)
    func = click.option(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT,
        show_default=True,
        envvar="NEXTMAVENS_LOCK_TIMEOUT",
        help="Seconds to wait for another apply to finish.",
    )(func)
    return func


def make_engine(dsn: str | None, master_key: Path, lock_timeout: float) -> Engine:
    if not dsn:
        raise Failure("no database connection: set NEXTMAVENS_DSN or pass --dsn")
    try:
        key_lifetime_days(os.environ)  # read where keys are issued; a bad value fails here, before any change
    except KeyLifetimeError as exc:
        raise Failure(str(exc)) from None
    return Engine(EngineConfig(dsn=dsn, master_key_path=master_key, lock_timeout_s=lock_timeout))


def load(projects_dir: Path) -> ManifestSet:
    try:
        return load_manifests(projects_dir)
    except ManifestErrors as exc:
        count = len(exc.errors)
        raise Failure(f"{count} problem(s) in the manifests; nothing was applied:\n{exc}") from None


# Expected failures defined in lazily imported modules: looked up when a failure is matched. An exception of a
# class whose module was never imported cannot have been raised, so this catches what eager imports caught.
LAZY_FAILURES = {"nextmavens.edge.apply": "EdgeRefused", "nextmavens.edge.settingsfile": "EdgeConfigError"}


def expected_failures() -> tuple[type[Exception], ...]:
    lazy = tuple(getattr(sys.modules[module], name) for module, name in LAZY_FAILURES.items() if module in sys.modules)
    return (LockTimeout, MasterKeyError, PlanError, DestroyError, *lazy)


def run_engine(action: Callable[[], Any]) -> Any:
    """Turn the engine's expected failures into clear messages; secrets never appear in them."""
    try:
        return action()
    except expected_failures() as exc:
        raise Failure(str(exc)) from None
    except InvalidTag:
        raise Failure(
            "the master key does not open the stored secrets: is NEXTMAVENS_MASTER_KEY the right file?"
        ) from None
    except psycopg.OperationalError as exc:
        raise Failure(f"cannot reach PostgreSQL: {str(exc).strip().splitlines()[0]}") from None
    except psycopg.Error as exc:
        diag = exc.diag.message_primary or type(exc).__name__
        raise Failure(f"PostgreSQL refused a change: {diag}") from None


def split_key(project: str) -> tuple[str, str]:
    org, _, ref = project.partition("/")
    if not org or not ref or "/" in ref:
        raise Failure(f"name the project as ORG/PROJECT, got {project!r}")
    return org, ref


def known_project(store: SecretStore, project: str) -> str:
    """The ref of ORG/PROJECT as recorded in the control database (checked on the caller's connection)."""
    org, ref = split_key(project)
    if store.project_org(ref) != org:
        raise Failure(f"no applied project {project!r} (apply it first, or check the name)")
    return ref
