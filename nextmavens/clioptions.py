"""Options that commands on both sides share and that must not cost the developer commands' fast start: click
only (nextmavens.cliparts, which re-exports them, imports the engine)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def edge_option(func: F) -> F:
    return click.option(
        "--edge-config",
        type=click.Path(path_type=Path),
        envvar="NEXTMAVENS_EDGE_CONFIG",
        default=None,
        help="Edge settings on the host (Kong, nginx, TLS, tenants); without it only the database is applied "
        "[env NEXTMAVENS_EDGE_CONFIG].",
    )(func)
