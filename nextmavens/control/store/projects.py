"""Orgs and projects as the engine recorded them (tables `orgs` and `projects`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class ControlProject:
    ref: str
    org: str
    name: str
    state: str
    manifest_path: str | None
    keys_issued_at: int | None
    layer_version: int
    destroyed: bool
    extensions: tuple[str, ...] | None = None  # declared at the last apply, sorted; None: not recorded


def all_projects(control: psycopg.Connection) -> list[ControlProject]:
    """Every project ever recorded, destroyed ones included."""
    rows = control.execute(
        "SELECT ref, org, name, state, manifest_path, keys_issued_at, layer_version, destroyed_at IS NOT NULL,"
        " extensions FROM projects"
    )
    return [
        ControlProject(ref, org, name, state, path, keys_at, layer, destroyed, None if ext is None else tuple(ext))
        for ref, org, name, state, path, keys_at, layer, destroyed, ext in rows
    ]


def all_orgs(control: psycopg.Connection) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """slug -> (name, ((email, role), ...))."""
    return {
        slug: (name, tuple((m["email"], m["role"]) for m in members))
        for slug, name, members in control.execute("SELECT slug, name, members FROM orgs")
    }


def org_members(control: psycopg.Connection, slug: str) -> tuple[tuple[str, str], ...]:
    """((email, role), ...) of one org as last applied; empty when the org is not recorded."""
    row = control.execute("SELECT members FROM orgs WHERE slug = %s", (slug,)).fetchone()
    return () if row is None else tuple((m["email"], m["role"]) for m in row[0])


def live_projects(control: psycopg.Connection) -> list[tuple[str, str]]:
    """(org, ref) of every project not destroyed, in that order."""
    rows = control.execute("SELECT org, ref FROM projects WHERE destroyed_at IS NULL ORDER BY org, ref").fetchall()
    return [(str(org), str(ref)) for org, ref in rows]


def project_org(control: psycopg.Connection, ref: str) -> str | None:
    """The org of an applied, not destroyed project."""
    row = control.execute("SELECT org FROM projects WHERE ref = %s AND destroyed_at IS NULL", (ref,)).fetchone()
    return None if row is None else str(row[0])


def save_org(control: psycopg.Connection, slug: str, name: str | None, members: list[dict[str, str]]) -> None:
    control.execute(
        "INSERT INTO orgs (slug, name, members, updated_at) VALUES (%s, %s, %s, now())"
        " ON CONFLICT (slug) DO UPDATE SET name = excluded.name, members = excluded.members, updated_at = now()",
        (slug, name, json.dumps(members)),
    )


def claim_project(control: psycopg.Connection, ref: str, org: str, name: str, state: str) -> None:
    """Record the project (again, if destroyed) before anything is created with its names."""
    control.execute(
        "INSERT INTO projects (ref, org, name, state) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (ref) DO UPDATE SET org = excluded.org, name = excluded.name, state = excluded.state,"
        " destroyed_at = NULL",
        (ref, org, name, state),
    )


def add_project_if_missing(control: psycopg.Connection, ref: str, org: str, name: str, state: str) -> None:
    control.execute(
        "INSERT INTO projects (ref, org, name, state) VALUES (%s, %s, %s, %s) ON CONFLICT (ref) DO NOTHING",
        (ref, org, name, state),
    )


def record_applied(
    control: psycopg.Connection,
    ref: str,
    org: str,
    name: str,
    state: str,
    manifest_path: str | None,
    layer_version: int,
    extensions: list[str],
) -> None:
    """The project as an apply just left it, with the layer version and extensions it declared."""
    control.execute(
        "INSERT INTO projects (ref, org, name, state, manifest_path, layer_version, extensions, last_applied_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (ref) DO UPDATE SET org = excluded.org, name = excluded.name, state = excluded.state,"
        " manifest_path = excluded.manifest_path, layer_version = excluded.layer_version,"
        " extensions = excluded.extensions, last_applied_at = now(), destroyed_at = NULL",
        (ref, org, name, state, manifest_path, layer_version, extensions),
    )


def record_applied_commit(control: psycopg.Connection, refs: list[str], commit: str, dirty: bool) -> None:
    """The manifest commit the projects `refs` were just applied from."""
    control.execute(
        "UPDATE projects SET last_apply_commit = %s, last_apply_dirty = %s"
        " WHERE ref = ANY(%s) AND destroyed_at IS NULL",
        (commit, dirty, refs),
    )


def lock_keys_issued_at(control: psycopg.Connection, ref: str) -> int | None:
    """When the project's keys were issued (None: not yet), its row locked until the transaction ends."""
    row = control.execute("SELECT keys_issued_at FROM projects WHERE ref = %s FOR UPDATE", (ref,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def key_times(control: psycopg.Connection, ref: str) -> tuple[int | None, int | None] | None:
    """(keys issued at, keys expire at) of a recorded project; None when it is not recorded."""
    row = control.execute("SELECT keys_issued_at, keys_expires_at FROM projects WHERE ref = %s", (ref,)).fetchone()
    if row is None:
        return None
    return (None if row[0] is None else int(row[0]), None if row[1] is None else int(row[1]))


def set_key_times(control: psycopg.Connection, ref: str, issued_at: int, expires_at: int) -> None:
    control.execute(
        "UPDATE projects SET keys_issued_at = %s, keys_expires_at = %s WHERE ref = %s", (issued_at, expires_at, ref)
    )


def mark_destroyed(control: psycopg.Connection, ref: str) -> None:
    """The record stays, for the audit trail; its keys are gone."""
    control.execute(
        "UPDATE projects SET destroyed_at = now(), keys_issued_at = NULL, keys_expires_at = NULL WHERE ref = %s",
        (ref,),
    )
