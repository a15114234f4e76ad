"""One engine session: connections, the apply lock, planning and applying with an audit record."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nextmavens.control.audit import audited
from nextmavens.control.crypto import MasterKeyError, Sealer, load_master_key, load_or_create_master_key
from nextmavens.control.db import connect_cluster, connect_control
from nextmavens.control.locks import apply_lock, join_work
from nextmavens.control.store import projects as projects_store
from nextmavens.control.store import secrets as sealed_secrets
from nextmavens.engine.desired import DesiredState, desired_state
from nextmavens.engine.execute import ChangeCallback, Executor
from nextmavens.engine.observe import observe, observe_extensions
from nextmavens.engine.observed import ObservedState
from nextmavens.engine.plan import Plan, PlanError, databases_to_inspect, make_plan
from nextmavens.engine.secretstore import SecretStore
from nextmavens.gitrepo import Revision
from nextmavens.keys import ApiKeys
from nextmavens.manifest.loader import ManifestSet


@dataclass(frozen=True)
class EngineConfig:
    dsn: str
    master_key_path: Path
    lock_timeout_s: float = 60.0
    actor: str = ""

    def who(self) -> str:
        return self.actor or os.environ.get("NEXTMAVENS_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class ApplyResult:
    run_id: int
    plan: Plan


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    @contextmanager
    def _connections(self, create_key: bool) -> Iterator[tuple[psycopg.Connection, psycopg.Connection, Sealer]]:
        control = connect_control(self.config.dsn)
        cluster = connect_cluster(self.config.dsn)
        try:
            yield cluster, control, Sealer(self._master_key(control, create_key))
        finally:
            cluster.close()
            control.close()

    @contextmanager
    def _working(self) -> Iterator[tuple[psycopg.Connection, psycopg.Connection, Sealer]]:
        """The connections under the apply lock, the cluster connection joined to the work lock: every
        change the engine makes runs inside this."""
        with self._connections(create_key=True) as (cluster, control, sealer):
            with apply_lock(self.config.dsn, control, self.config.lock_timeout_s):
                yield join_work(cluster), control, sealer

    def _master_key(self, control: psycopg.Connection, create: bool) -> bytes:
        path = self.config.master_key_path
        if create:
            return load_or_create_master_key(path)
        if path.exists():
            return load_master_key(path)
        if sealed_secrets.any_sealed(control):
            raise MasterKeyError(
                f"master key file {path} does not exist, but the control database holds secrets sealed with a key"
            )
        return bytes(32)  # nothing is sealed yet: planning needs no real key, and creates none

    def plan(self, manifests: ManifestSet) -> Plan:
        desired = desired_state(manifests)
        with self._connections(create_key=False) as (cluster, control, sealer):
            return make_plan(desired, self._observe(cluster, control, sealer, desired))

    def _observe(
        self, cluster: psycopg.Connection, control: psycopg.Connection, sealer: Sealer, desired: DesiredState
    ) -> ObservedState:
        """The shared catalogs and the control database, then extension names where the planner needs them."""
        observed = observe(cluster, control, sealer)
        observe_extensions(self.config.dsn, observed, databases_to_inspect(desired, observed))
        return observed

    def apply(
        self,
        manifests: ManifestSet,
        confirm: Callable[[Plan], bool] | None = None,
        on_change: ChangeCallback | None = None,
        command: str = "apply",
        revision: Revision | None = None,
    ) -> ApplyResult | None:
        """Plan under the lock, ask `confirm`, execute. Returns None when the operator declined. `revision`: the
        manifest repository's commit the manifests were read from, recorded in the run and on each project."""
        desired = desired_state(manifests)
        with self._working() as (cluster, control, sealer):
            plan = make_plan(desired, self._observe(cluster, control, sealer, desired))
            if plan.errors:
                raise PlanError("\n".join(plan.errors))
            if confirm is not None and not plan.empty and not confirm(plan):
                return None
            changes = [c.as_json() for c in plan.changes]
            with audited(control, command, self.config.who(), changes, revision) as run_id:
                Executor(self.config.dsn, cluster, control, SecretStore(control, sealer), desired).run(plan, on_change)
                if revision is not None:
                    refs = [p.ref for p in desired.projects]
                    projects_store.record_applied_commit(control, refs, revision.commit, revision.dirty)
            return ApplyResult(run_id, plan)

    @contextmanager
    def secrets(self) -> Iterator[SecretStore]:
        with self._connections(create_key=False) as (_cluster, control, sealer):
            yield SecretStore(control, sealer)

    @contextmanager
    def changing(self, command: str, detail: list[dict[str, str]]) -> Iterator[tuple[psycopg.Connection, SecretStore]]:
        """Connections, lock and an audit record for a change outside apply (rotate, destroy)."""
        with self._working() as (cluster, control, sealer):
            with audited(control, command, self.config.who(), detail):
                yield cluster, SecretStore(control, sealer)

    def rotate_keys(self, org: str, ref: str) -> ApiKeys:
        """A new JWT secret and keys for the applied project org/ref, under the apply lock and recorded as a
        `keys rotate` run; the edge is the caller's to converge. NotApplied (the run recorded as failed) when no
        applied project has that name: checked under the lock, so nobody renames or destroys it meanwhile."""
        change = {"project": f"{org}/{ref}", "action": "rotate", "kind": "keys"}
        with self.changing("keys rotate", [change]) as (_, store):
            if store.project_org(ref) != org:
                raise NotApplied(org, ref)
            return store.rotate_keys(ref)


class NotApplied(LookupError):
    """No applied (and not destroyed) project of that org and ref."""

    def __init__(self, org: str, ref: str) -> None:
        super().__init__(f"no applied project {org}/{ref}")
        self.org = org
        self.ref = ref
