"""The project a folder is linked to: `.nextmavens/project` in it holds one line, ORG/REF (written by
`nextmavens link`, write_link). Commands that take ORG/REF as an optional first argument read it when it is left out."""

from __future__ import annotations

import re
from pathlib import Path

from nextmavens.naming import REF_PATTERN

LINK_FILE = Path(".nextmavens") / "project"


class ProjectLinkError(ValueError):
    """No link, or an unreadable one; the message names the file."""


def linked_project(folder: Path) -> str:
    """ORG/REF from `folder`'s link file."""
    path = folder / LINK_FILE
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ProjectLinkError(
            f"no project named and no linked project here ({path} does not exist): pass ORG/REF first"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectLinkError(f"cannot read {path}: {type(exc).__name__}") from None
    named = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    org, _, ref = named[0].partition("/") if len(named) == 1 else ("", "", "")
    if not (re.fullmatch(REF_PATTERN, org) and re.fullmatch(REF_PATTERN, ref)):
        raise ProjectLinkError(f"{path}: must hold exactly one line ORG/REF, e.g. acme/shop")
    return f"{org}/{ref}"


def check_project(project: str) -> str:
    """ORG/REF as given, or ProjectLinkError naming it."""
    org, _, ref = project.partition("/")
    if not (re.fullmatch(REF_PATTERN, org) and re.fullmatch(REF_PATTERN, ref)):
        raise ProjectLinkError(f"{project!r} is not ORG/REF, e.g. acme/shop")
    return project


def write_link(folder: Path, project: str) -> Path:
    """Links `folder` to ORG/REF (checked as linked_project reads it): `.nextmavens/project`, replaced whole."""
    org, _, ref = check_project(project).partition("/")
    path = folder / LINK_FILE
    path.parent.mkdir(exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(f"{org}/{ref}\n")
    staging.replace(path)
    return path
