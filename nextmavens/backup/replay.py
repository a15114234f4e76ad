"""Who replays each entry of a dump: pure logic over the lines of `pg_restore --list`.

Restoring as a superuser runs the tenant's own code as a superuser: a CHECK constraint checked during
COPY, an index expression, a generated column, a foreign key's operators may all call the tenant's
functions. `SET ROLE` or `SET SESSION AUTHORIZATION` to the tenant is no defence, because code running in a
session whose *authenticated* user is a superuser can `RESET ROLE` or `SET SESSION AUTHORIZATION DEFAULT`
back. So the restore replays the archive in several `pg_restore` runs over the same ciphertext, each in
the archive's own order:

1. platform definitions: as a superuser, on the still-empty database, the pre-data part of what cannot
   contain the tenant's code: schemas (created empty, then handed to their owner), extensions (their
   scripts come from the server, and no object of the tenant exists yet to hijack them), and whatever a
   superuser the platform manages owns (the layer's functions, the publication, Realtime's tables).
2. project objects: everything owned by the project's own roles, in a session *logged in* as a temporary
   role that is no superuser and a member of those roles only: its objects, their data, indexes,
   constraints, triggers, policies and grants. Whatever their code does, it does with the project's
   privileges.
3. platform data: the data, indexes and constraints of what the platform's superusers own, now that the
   project's tables exist (Realtime's subscriptions name them as regclass values). Their definitions are
   the platform's, and none of the project's code can be attached to them.
4. platform last: entries that must follow the tenant's objects and execute nothing: event triggers,
   publication memberships, and comments on anything but the project's own objects.

An entry owned by any other role (another project's, a shared API role, a superuser the platform does
not manage) stops the restore before anything runs: replaying it as a superuser could run its code with
a superuser's rights, and the restore role may not act as that role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Catalog OIDs that identify entries in a listing line (`ID; TABLEOID OID DESC ...`).
PG_NAMESPACE = 2615
PG_EXTENSION = 3079
PG_EVENT_TRIGGER = 3466
PG_PUBLICATION_REL = 6106
PG_PUBLICATION_NAMESPACE = 6237
# The built-in role that owns `public` since PostgreSQL 15; the database owner acts as it.
DATABASE_OWNER_ROLE = "pg_database_owner"

_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")


class ReplayError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    dump_id: int
    catalog: int  # the catalog table the object lives in; 0 for comments, ACLs and data
    rest: str  # "DESC SCHEMA NAME" as listed (names sanitised by pg_restore, may hold spaces)
    owner: str  # "" when the entry has no owner (extensions, casts, their comments)

    @property
    def is_comment(self) -> bool:
        return self.catalog == 0 and self.rest.startswith(("COMMENT ", "SECURITY LABEL "))


def parse_listing(text: str) -> list[Entry]:
    """Entries of `pg_restore --list`, in archive order.

    The owner is the last field; pg_restore prints an empty owner as nothing after the last space, so a
    line ending in a space has none. Names before it may hold spaces but never the owner (a tenant can
    name objects, not own them as someone else)."""
    entries = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ReplayError(f"unexpected line in the archive's table of contents: {line[:120]!r}")
        rest = match.group(4)
        if rest.endswith(" "):
            body, owner = rest[:-1], ""
        else:
            body, _, owner = rest.rpartition(" ")
        entries.append(Entry(int(match.group(1)), int(match.group(2)), body, owner))
    return entries


@dataclass
class ReplayPlan:
    platform: list[int] = field(default_factory=list)
    tenant: list[int] = field(default_factory=list)
    platform_last: list[int] = field(default_factory=list)
    tenant_roles: list[str] = field(default_factory=list)  # roles the temporary role must act as


def plan_replay(
    entries: Iterable[Entry], superusers: Iterable[str], project_roles: Iterable[str], what: str
) -> ReplayPlan:
    """Assign each entry to a run (see the module docstring). `superusers`: the managed superusers that
    are superusers now; `project_roles`: this project's roles that exist and are not superusers."""
    trusted = set(superusers)
    own = set(project_roles) - trusted
    plan = ReplayPlan()
    refused: dict[str, int] = {}
    roles: list[str] = []
    for entry in entries:
        owner = entry.owner
        if owner in trusted:
            if entry.catalog in (PG_EVENT_TRIGGER, PG_PUBLICATION_REL, PG_PUBLICATION_NAMESPACE) or entry.is_comment:
                plan.platform_last.append(entry.dump_id)
            else:
                plan.platform.append(entry.dump_id)
            continue
        if not owner:
            if entry.catalog == PG_EXTENSION:
                plan.platform.append(entry.dump_id)
            elif entry.catalog in (PG_PUBLICATION_REL, PG_PUBLICATION_NAMESPACE) or entry.is_comment:
                plan.platform_last.append(entry.dump_id)
            else:
                plan.tenant.append(entry.dump_id)  # casts and the like: created with the tenant's rights
            continue
        if owner not in own and owner != DATABASE_OWNER_ROLE:
            refused[owner] = refused.get(owner, 0) + 1
            continue
        if entry.catalog == PG_NAMESPACE:
            plan.platform.append(entry.dump_id)  # CREATE SCHEMA, then ALTER SCHEMA ... OWNER TO owner
        else:
            plan.tenant.append(entry.dump_id)
        if owner in own and owner not in roles:
            roles.append(owner)
    if refused:
        names = ", ".join(f"{name} ({count} entries)" for name, count in sorted(refused.items()))
        raise ReplayError(
            f"{what} holds objects owned by roles that are neither this project's nor the platform's: {names}. "
            "Nothing was restored: replaying them as a superuser could run their code as a superuser"
        )
    plan.tenant_roles = roles
    return plan


def list_file_text(dump_ids: Iterable[int]) -> str:
    """A `pg_restore --use-list` file: pg_restore reads only the number before the semicolon."""
    return "".join(f"{dump_id};\n" for dump_id in dump_ids)
