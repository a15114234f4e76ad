"""Manifest text the service writes, built from values and checked by the manifest models. Pure: no I/O.

Tenant text never goes into YAML by string templating: a new manifest is a dict validated by ProjectManifest
and dumped by yaml.safe_dump; a state change rewrites only the `state:` line, whose value comes from a fixed
set, so a hand-written manifest keeps its comments and layout. An org's member list is replaced whole: the
org.yaml is dumped again from its other values and the new members, checked by OrgManifest.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nextmavens.manifest.loader import describe
from nextmavens.manifest.models import OrgManifest, ProjectManifest
from nextmavens.manifest.yamlsource import parse_yaml

SCHEMA_HEADER = "# yaml-language-server: $schema=../../schema/project.schema.json\n"
ORG_SCHEMA_HEADER = "# yaml-language-server: $schema=../../schema/org.schema.json\n"
NO_OWNER = "members: an org must keep at least one owner"
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


def model_problems(model: type[BaseModel], document: dict[str, Any]) -> list[str]:
    """`field: message` for each problem `model` finds in `document` (empty: valid), fields named by the manifest."""
    try:
        model.model_validate(document)
    except ValidationError as exc:
        problems = []
        for problem in exc.errors():
            field, message = describe(problem)
            problems.append(f"{request_field(field)}: {message}" if field else message)
        return problems
    return []


def document_problems(document: dict[str, Any]) -> list[str]:
    """`field: message` for each problem the project model finds (empty: valid), named as the request names them."""
    return model_problems(ProjectManifest, document)


def render_document(document: dict[str, Any], header: str = SCHEMA_HEADER) -> str:
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def org_values(text: str) -> dict[str, Any]:
    """The values of an org.yaml's text (a mapping, or ValueError)."""
    document = parse_yaml(text)
    if not isinstance(document.data, dict):
        raise ValueError("an org.yaml must be a YAML mapping of keys to values")
    return dict(document.data)


def with_members(values: dict[str, Any], members: list[dict[str, str]]) -> dict[str, Any]:
    """An org.yaml's values with its member list replaced by `members` (each {email, role}); the rest kept."""
    return {**values, "members": [{"email": m["email"], "role": m["role"]} for m in members]}


def members_problems(document: dict[str, Any]) -> list[str]:
    """The org model's problems (emails, roles, repeats) and an org left without an owner: an owner may leave or
    step down only while another owner remains, so no call locks every owner out."""
    problems = model_problems(OrgManifest, document)
    members = document.get("members")
    if isinstance(members, list) and not any(isinstance(m, dict) and m.get("role") == "owner" for m in members):
        problems.append(NO_OWNER)
    return problems


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
