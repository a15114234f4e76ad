"""The one authorization check of the platform service. Pure: plain values in, a decision out.

A caller is a member (their role in each org, as last applied from org.yaml) acting through a token whose scope
may narrow them to one org or one project, and to reads. A project outside the token's scope or the member's
orgs is invisible (404, so existence does not leak across orgs); a visible one with too low a role, or a write
through a read-only token, is forbidden (403).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

ROLE_RANK = {"developer": 1, "admin": 2, "owner": 3}


class Decision(StrEnum):
    ALLOW = "allow"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


class Action(StrEnum):
    READ_PROJECT = "projects.read"
    READ_ANON_KEY = "keys.read_anon"
    READ_SERVICE_KEY = "keys.read_service_role"
    READ_LOGS = "logs.read"
    READ_MIGRATIONS = "migrations.read"
    APPLY_MIGRATIONS = "migrations.apply"
    ROTATE_KEYS = "keys.rotate"
    SUSPEND_PROJECT = "projects.suspend"
    MANAGE_WHATSAPP = "whatsapp.manage"
    SEND_WHATSAPP = "whatsapp.send"
    SEND_EMAIL = "email.send"
    CREATE_PROJECT = "projects.create"
    READ_MEMBERS = "members.read"
    MANAGE_MEMBERS = "members.manage"
    READ_ORG_TOKENS = "tokens.read_org"
    MANAGE_ORG_TOKENS = "tokens.manage_org"
    READ_AUDIT = "audit.read"
    READ_SQL = "sql.read"  # one statement as the project's read-only role; its tables, extensions, types
    WRITE_SQL = "sql.write"  # one statement as the project's owner role
    OPEN_STUDIO = "studio.open"  # Supabase Studio on the project's database, as its owner role
    DEPLOY_APP = "apps.deploy"


@dataclass(frozen=True)
class Rule:
    role: str  # the lowest role allowed
    write: bool
    on_project: bool  # acts on one project (else on the org as a whole)


RULES: dict[Action, Rule] = {
    Action.READ_PROJECT: Rule("developer", write=False, on_project=True),
    Action.READ_ANON_KEY: Rule("developer", write=False, on_project=True),
    Action.READ_SERVICE_KEY: Rule("admin", write=False, on_project=True),
    Action.READ_LOGS: Rule("developer", write=False, on_project=True),
    Action.READ_MIGRATIONS: Rule("developer", write=False, on_project=True),
    Action.APPLY_MIGRATIONS: Rule("developer", write=True, on_project=True),
    Action.ROTATE_KEYS: Rule("admin", write=True, on_project=True),
    Action.SUSPEND_PROJECT: Rule("admin", write=True, on_project=True),
    Action.MANAGE_WHATSAPP: Rule("admin", write=True, on_project=True),
    Action.SEND_WHATSAPP: Rule("admin", write=True, on_project=True),
    Action.SEND_EMAIL: Rule("developer", write=True, on_project=True),
    Action.CREATE_PROJECT: Rule("admin", write=True, on_project=False),
    Action.READ_MEMBERS: Rule("developer", write=False, on_project=False),
    Action.MANAGE_MEMBERS: Rule("owner", write=True, on_project=False),
    Action.READ_ORG_TOKENS: Rule("owner", write=False, on_project=False),
    Action.MANAGE_ORG_TOKENS: Rule("owner", write=True, on_project=False),
    Action.READ_AUDIT: Rule("owner", write=False, on_project=False),
    Action.READ_SQL: Rule("developer", write=False, on_project=True),
    Action.WRITE_SQL: Rule("admin", write=True, on_project=True),
    Action.OPEN_STUDIO: Rule("admin", write=True, on_project=True),
    Action.DEPLOY_APP: Rule("developer", write=True, on_project=True),
}


@dataclass(frozen=True)
class Scope:
    """What a token narrows its member to: one org (or all theirs), one project of it, reads only."""

    org: str | None = None
    project: str | None = None
    read_only: bool = False


def decide(roles: Mapping[str, str], scope: Scope, action: Action, org: str, project: str | None = None) -> Decision:
    """May a member with `roles` (org -> role), through a token of `scope`, do `action` on `org` (and
    `project`, for actions on one project)?"""
    rule = RULES[action]
    if rule.on_project and project is None:
        raise ValueError(f"{action} acts on a project: name one")
    role = roles.get(org)
    if role not in ROLE_RANK or (scope.org is not None and scope.org != org):
        return Decision.NOT_FOUND
    if scope.project is not None:
        if not rule.on_project:
            return Decision.FORBIDDEN  # the org is visible through its project, but the token holds no more
        if scope.project != project:
            return Decision.NOT_FOUND
    if ROLE_RANK[role] < ROLE_RANK[rule.role] or (rule.write and scope.read_only):
        return Decision.FORBIDDEN
    return Decision.ALLOW


def visible_orgs(roles: Mapping[str, str], scope: Scope) -> dict[str, str]:
    """org -> role for the orgs the token lets its member see."""
    return {org: role for org, role in roles.items() if role in ROLE_RANK and scope.org in (None, org)}


def within(new: Scope, holder: Scope) -> bool:
    """Is `new` equal to or narrower than `holder` (a token may only create tokens that hold no more)?"""
    if holder.org is not None and new.org != holder.org:
        return False
    if holder.project is not None and new.project != holder.project:
        return False
    return new.read_only or not holder.read_only


def is_platform_operator(roles: Mapping[str, str], scope: Scope, orgs: Iterable[str]) -> bool:
    """May this caller see the host as a whole (its memory, disks, every container: the dashboard's host page)?
    Members have roles per org only, with no platform-wide one, so the narrowest rule that fits: an owner of every
    org on the platform (at least one), through a token or session narrowed to none of them."""
    every = list(orgs)
    if not every or scope.org is not None or scope.project is not None:
        return False
    return all(roles.get(org) == "owner" for org in every)
