"""Carry out a plan's changes against the cluster, in order, one idempotent step at a time.

Each step is either one statement (autocommit) or one transaction (the layer inside a database), so a
process killed anywhere leaves whole steps behind, and the next apply's fresh plan finishes the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from nextmavens.control.db import connect_cluster, end_role_sessions
from nextmavens.control.locks import join_work
from nextmavens.control.store import projects
from nextmavens.engine import sqlgen
from nextmavens.engine.desired import CLUSTER_SCOPE, LAYER_VERSION, DesiredState, ProjectSpec, RoleSpec
from nextmavens.engine.plan import Change, Plan
from nextmavens.engine.scram import scram_verifier
from nextmavens.engine.secretstore import SecretStore

ChangeCallback = Callable[[Change], None]


class Executor:
    def __init__(
        self,
        dsn: str,
        cluster: psycopg.Connection,
        control: psycopg.Connection,
        secrets: SecretStore,
        desired: DesiredState,
    ) -> None:
        self._dsn = dsn
        self._cluster = cluster
        self._control = control
        self._secrets = secrets
        self._desired = desired
        self._projects = {p.key: p for p in desired.projects}
        self._orgs = {o.slug: o for o in desired.orgs}
        self._roles: dict[str, RoleSpec] = {r.name: r for r in desired.cluster_roles}
        for project in desired.projects:
            self._roles.update({r.name: r for r in project.roles})

    def run(self, plan: Plan, before: ChangeCallback | None = None) -> None:
        for change in plan.changes:
            if before:
                before(change)
            self.apply_change(change)

    def apply_change(self, change: Change) -> None:
        handler = getattr(self, f"_do_{change.kind}")
        handler(change)

    def _project(self, change: Change) -> ProjectSpec:
        return self._projects[change.project]

    def _do_org(self, change: Change) -> None:
        org = self._orgs[change.target]
        members = [{"email": email, "role": role} for email, role in org.members]
        projects.save_org(self._control, org.slug, org.name, members)

    def _do_claim(self, change: Change) -> None:
        """The control record comes first: what exists with the project's names is then known to be its own."""
        project = self._project(change)
        projects.claim_project(self._control, project.ref, project.org, project.name, project.state)

    def _do_secrets(self, change: Change) -> None:
        project = self._project(change)
        self._secrets.ensure_project(
            project.ref,
            project.org,
            project.name,
            project.state,
            project.names.login_roles,
            project.whatsapp_instances,
        )

    def _do_role(self, change: Change) -> None:
        role = self._roles[change.target]
        statement = sqlgen.create_role(role) if change.action == "create" else sqlgen.alter_role(role)
        self._cluster.execute(statement)

    def _do_password(self, change: Change) -> None:
        role = change.target
        scope = change.data.get("scope", CLUSTER_SCOPE)
        password = self._secrets.get_or_create(scope, f"password:{role}")
        verifier = scram_verifier(password)
        # Store first: if we die between the two, the next plan sees the mismatch and sets it again.
        self._secrets.put(scope, f"verifier:{role}", verifier)
        self._cluster.execute(sqlgen.set_password(role, verifier))

    def _do_membership(self, change: Change) -> None:
        self._cluster.execute(sqlgen.grant_membership(change.data["parent"], change.target))

    def _do_role_setting(self, change: Change) -> None:
        self._cluster.execute(sqlgen.set_role_setting(change.target, change.data["name"], change.data["value"]))

    def _do_database(self, change: Change) -> None:
        spec = self._project(change).database
        if change.action == "create":
            self._cluster.execute(sqlgen.create_database(spec))
            return
        if change.data.get("owner"):
            self._cluster.execute(sqlgen.alter_database_owner(spec))
        if change.data.get("connection_limit"):
            self._cluster.execute(sqlgen.alter_database_connection_limit(spec))

    def _do_database_setting(self, change: Change) -> None:
        self._cluster.execute(sqlgen.set_database_setting(change.target, change.data["name"], change.data["value"]))

    def _do_grant(self, change: Change) -> None:
        grantee = change.data["grantee"]
        if change.action == "revoke":
            self._cluster.execute(sqlgen.revoke_database(change.target, grantee))
        else:
            self._cluster.execute(sqlgen.grant_connect(change.target, grantee))

    def _do_open(self, change: Change) -> None:
        self._cluster.execute(sqlgen.open_database(change.target))

    def _do_layer(self, change: Change) -> None:
        project = self._project(change)
        # The database's owner may set its search_path (ALTER DATABASE ... SET): this superuser session
        # resolves names in pg_catalog only, so no function or operator of the project's runs here.
        with connect_cluster(self._dsn, project.database.name, trusted_path=True) as conn:
            join_work(conn)
            with conn.transaction():
                for statement in sqlgen.layer_statements(project.layer):
                    conn.execute(statement)

    def _do_sessions(self, change: Change) -> None:
        end_role_sessions(self._cluster, change.target)

    def _do_record(self, change: Change) -> None:
        project = self._project(change)
        projects.record_applied(
            self._control,
            project.ref,
            project.org,
            project.name,
            project.state,
            project.manifest_path,
            LAYER_VERSION,
            sorted(project.layer.extensions),  # what the plan compares (plan.databases_to_inspect)
        )
