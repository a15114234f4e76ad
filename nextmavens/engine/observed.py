"""What the cluster holds now, as plain values (filled by observe.py, read by the planner)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nextmavens.control.store.projects import ControlProject

PUBLIC = "PUBLIC"  # the grantee name used for PostgreSQL's PUBLIC pseudo-role


@dataclass(frozen=True)
class ObservedRole:
    name: str
    login: bool
    inherit: bool
    bypassrls: bool
    superuser: bool
    password: str | None  # the stored verifier (SCRAM), never a plaintext


@dataclass(frozen=True)
class ObservedDatabase:
    name: str
    owner: str
    connection_limit: int
    # (grantee or PUBLIC, privilege) pairs from the database's ACL (defaults made explicit)
    acl: frozenset[tuple[str, str]]
    # False while a new database is being set up (created closed, opened once its grants are in place)
    allow_connections: bool = True


@dataclass(frozen=True)
class ObservedExtension:
    name: str
    owner: str
    schema: str
    required_by: tuple[str, ...] = ()  # extensions that depend on it (it came with them, by CASCADE)


@dataclass
class ObservedState:
    roles: dict[str, ObservedRole] = field(default_factory=dict)
    memberships: dict[str, set[str]] = field(default_factory=dict)  # member -> roles it is granted
    role_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    database_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    databases: dict[str, ObservedDatabase] = field(default_factory=dict)
    # (database, catalog, role, deptype) -> rows in pg_shdepend
    dependencies: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    available_extensions: set[str] = field(default_factory=set)
    # database -> extension name -> what it is; only for the databases whose extensions were read by name
    extensions: dict[str, dict[str, ObservedExtension]] = field(default_factory=dict)
    control_projects: dict[str, ControlProject] = field(default_factory=dict)
    # org slug -> (name, ((email, role), ...)) as recorded
    control_orgs: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    # scope -> names of stored secrets
    secret_names: dict[str, set[str]] = field(default_factory=dict)
    # role -> the verifier the control database expects it to have (decrypted in memory only)
    expected_verifiers: dict[str, str] = field(default_factory=dict)
    # (database, role) pairs with open sessions, to end them when a project is suspended
    sessions: set[tuple[str, str]] = field(default_factory=set)

    def __repr__(self) -> str:  # verifiers are secret material; keep them out of any repr
        return f"ObservedState(roles={len(self.roles)}, databases={len(self.databases)})"
