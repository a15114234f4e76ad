"""Jinja for the configuration files the product renders: one environment per template folder, strict about
undefined names (a typo fails the render instead of writing an empty value), never HTML-escaped, no
process-global cache between folders.

HTML (the dashboard's pages) has its own environment, html_environment, with autoescape on.

Two folders: the repository's host templates (templates/, stacks/; rendered by the host deploy, which runs
from a checkout) and the edge's nginx template, shipped inside the package so the wheel on the host has it
(NEXTMAVENS_TEMPLATES=<dir> replaces it with <dir>/edge).
"""

from __future__ import annotations

import json
import os
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

REPO_ROOT = Path(__file__).resolve().parents[1]
EDGE_TEMPLATES = (
    Path(os.environ["NEXTMAVENS_TEMPLATES"]) / "edge"
    if os.environ.get("NEXTMAVENS_TEMPLATES")
    else Path(__file__).resolve().parent / "edge" / "templates"
)


@cache
def environment(root: Path, trim_blocks: bool = True) -> jinja2.Environment:
    """`trim_blocks`: block tags take their line with them (the host templates); the edge's nginx template
    is written with its whitespace as it should come out."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )
    env.filters["tojson"] = lambda value: json.dumps(value)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    return env


@cache
def html_environment(root: Path) -> jinja2.Environment:
    """The sibling for HTML pages (the platform service's dashboard): every value HTML-escaped, strict about
    undefined names like the configuration templates."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, root: Path = REPO_ROOT, **context: Any) -> str:
    """Render `template` (a path relative to `root`, by default the repository root)."""
    return environment(root).get_template(template).render(**context)
