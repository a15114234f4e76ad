"""Manifest text the service writes, built from values and checked by the manifest models. Pure: no I/O.

Tenant text never goes into YAML by string templating: a new manifest is a dict validated by ProjectManifest
and dumped by yaml.safe_dump; a state change rewrites only the `state:` line, whose value comes from a fixed
set, so a hand-written manifest keeps its comments and layout.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import ValidationError

from nextmavens.manifest.loader import describe
from nextmavens.manifest.models import ProjectManifest
from nextmavens.manifest.yamlsource import parse_yaml

SCHEMA_HEADER = "# yaml-language-server: $schema=../../schema/project.schema.json\n"
STATES = ("active", "suspended")
# A top-level `state:` line holding a plain scalar and maybe a comment: rewritten in place.
_STATE_LINE = re.compile(r"state:[ \t]*(?:[A-Za-z]+|'[A-Za-z]+'|\"[A-Za-z]+\")[ \t]*(?:#.*)?")
# Where a request's fields live in the manifest: problems are reported under the request's names.
REQUEST_FIELDS = {
    "auth.site_url": "site_url",
    "auth.redirect_urls": "redirect_urls",
    "auth.disable_signup": "disable_signup",
}


def project_document(
    ref: str, name: str, site_url: str, redirect_urls: list[str], disable_signup: bool
) -> dict[str, Any]:
    """The manifest of a new project, as plain values; everything else takes the models' defaults."""
    auth: dict[str, Any] = {"site_url": site_url}
    if redirect_urls:
        auth["redirect_urls"] = list(redirect_urls)
    if disable_signup:
        auth["disable_signup"] = True
    return {"ref": ref, "name": name, "state": "active", "auth": auth}


def request_field(manifest_field: str) -> str:
    for prefix, name in REQUEST_FIELDS.items():
        if manifest_field == prefix or manifest_field.startswith((f"{prefix}[", f"{prefix}.")):
            return name + manifest_field[len(prefix) :]
    return manifest_field


def document_problems(document: dict[str, Any]) -> list[str]:
    """`field: message` for each problem the project model finds (empty: valid), named as the request names them."""
    try:
        ProjectManifest.model_validate(document)
    except ValidationError as exc:
        problems = []
        for problem in exc.errors():
            field, message = describe(problem)
            problems.append(f"{request_field(field)}: {message}" if field else message)
        return problems
    return []


def render_document(document: dict[str, Any]) -> str:
    return SCHEMA_HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def with_state(text: str, state: str) -> str:
    """`text` with its top-level `state` set to `state` (one of STATES)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    document = parse_yaml(text)
    if not isinstance(document.data, dict):
        raise ValueError("a manifest must be a YAML mapping of keys to values")
    lines = text.splitlines(keepends=True)
    if "state" not in document.data:
        ending = "" if not lines or lines[-1].endswith("\n") else "\n"
        return f"{text}{ending}state: {state}\n"
    index = document.line_of(("state",)) - 1
    if 0 <= index < len(lines) and _STATE_LINE.fullmatch(lines[index].rstrip("\r\n")):
        newline = lines[index][len(lines[index].rstrip("\r\n")) :]
        lines[index] = f"state: {state}{newline}"
        return "".join(lines)
    # Written some other way (a flow mapping, say): dumped again from its values.
    return SCHEMA_HEADER + yaml.safe_dump({**document.data, "state": state}, sort_keys=False, allow_unicode=True)
