"""One engine session: connections, the apply lock, planning and applying with an audit record."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors

from nextmavens.control.crypto import MasterKeyError, Sealer, load_master_key, load_or_create_master_key
from nextmavens.control.db import connect_cluster, connect_control
from nextmavens.engine.desired import DesiredState, desired_state
from nextmavens.engine.execute import ChangeCallback, Executor
from nextmavens.engine.locks import APPLY_LOCK_KEY, WORK_LOCK_KEY, join_work
from nextmavens.engine.observe import observe, observe_extensions
from nextmavens.engine.observed import ObservedState
from nextmavens.engine.plan import Plan, PlanError, databases_to_inspect, make_plan
from nextmavens.engine.secretstore import SecretStore
from nextmavens.manifest.loader import ManifestSet


class LockTimeout(Exception):
    pass


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

    def _master_key(self, control: psycopg.Connection, create: bool) -> bytes:
        path = self.config.master_key_path
        if create:
            return load_or_create_master_key(path)
        if path.exists():
            return load_master_key(path)
        if control.execute("SELECT 1 FROM secrets LIMIT 1").fetchone():
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
    ) -> ApplyResult | None:
        """Plan under the lock, ask `confirm`, execute. Returns None when the operator declined."""
        desired = desired_state(manifests)
        with self._connections(create_key=True) as (cluster, control, sealer), self.locked(control):
            join_work(cluster)
            plan = make_plan(desired, self._observe(cluster, control, sealer, desired))
            if plan.errors:
                raise PlanError("\n".join(plan.errors))
            if confirm is not None and not plan.empty and not confirm(plan):
                return None
            with self._audited(control, command, [c.as_json() for c in plan.changes]) as run_id:
                Executor(self.config.dsn, cluster, control, SecretStore(control, sealer), desired).run(plan, on_change)
            return ApplyResult(run_id, plan)

    @contextmanager
    def secrets(self) -> Iterator[SecretStore]:
        with self._connections(create_key=False) as (_cluster, control, sealer):
            yield SecretStore(control, sealer)

    @contextmanager
    def changing(self, command: str, detail: list[dict[str, str]]) -> Iterator[tuple[psycopg.Connection, SecretStore]]:
        """Connections, lock and an audit record for a change outside apply (rotate, destroy)."""
        with self._connections(create_key=True) as (cluster, control, sealer), self.locked(control):
            join_work(cluster)
            with self._audited(control, command, detail):
                yield cluster, SecretStore(control, sealer)

    @contextmanager
    def locked(self, control: psycopg.Connection) -> Iterator[None]:
        """The apply lock on `control`. Once held, the statements of an earlier holder that was killed have
        ended too, and its unfinished audit runs are marked interrupted. Connections that change the cluster
        under this lock must be marked with `join_work`."""
        control.execute(
            "SELECT set_config('lock_timeout', %s, false)", (f"{int(self.config.lock_timeout_s * 1000)}ms",)
        )
        try:
            control.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        except errors.LockNotAvailable:
            holder = control.execute(
                "SELECT a.pid, a.backend_start, coalesce(a.client_addr::text, 'local') FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                (APPLY_LOCK_KEY,),
            ).fetchone()
            who = (
                f" (server pid {holder[0]} from {holder[2]}, connected {holder[1]:%Y-%m-%d %H:%M:%S})" if holder else ""
            )
            raise LockTimeout(
                f"another apply is running{who}; waited {self.config.lock_timeout_s:g}s. Try again when it ends."
            ) from None
        finally:
            control.execute("SELECT set_config('lock_timeout', '0', false)")
        try:
            self._wait_for_earlier_work(control)
            # Holding the lock proves no other run is going on: a run still marked running was killed.
            control.execute(
                "UPDATE apply_runs SET result = 'interrupted', finished_at = now(),"
                " error = 'the process ended before the run finished (found by a later run)'"
                " WHERE result = 'running'"
            )
            yield
        finally:
            if not control.closed:
                control.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))

    def _wait_for_earlier_work(self, control: psycopg.Connection) -> None:
        """Wait (within the lock timeout) until no working connection of an earlier holder remains.

        Advisory locks belong to one database, and working connections are in several (the cluster's,
        each project's): find the databases where one is still held, and wait for it there.
        """
        databases = control.execute(
            "SELECT DISTINCT d.datname FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.pid <> pg_backend_pid()"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (WORK_LOCK_KEY,),
        ).fetchall()
        for (database,) in databases:
            with connect_cluster(self.config.dsn, database, trusted_path=True) as conn:
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, false)", (f"{int(self.config.lock_timeout_s * 1000)}ms",)
                )
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", (WORK_LOCK_KEY,))
                except errors.LockNotAvailable:
                    raise LockTimeout(
                        f"statements of an earlier, ended apply are still running in database {database!r} after "
                        f"{self.config.lock_timeout_s:g}s (see pg_stat_activity, application_name nextmavens). "
                        "Try again when they end."
                    ) from None

    @contextmanager
    def _audited(self, control: psycopg.Connection, command: str, changes: list[dict[str, str]]) -> Iterator[int]:
        """One audit-log row per change made: who, what, when, and whether it ended ok or failed (and why)."""
        row = control.execute(
            "INSERT INTO apply_runs (command, actor, changes) VALUES (%s, %s, %s) RETURNING id",
            (command, self.config.who(), json.dumps(changes)),
        ).fetchone()
        assert row is not None
        run_id = int(row[0])
        finish = "UPDATE apply_runs SET finished_at = now(), result = %s, error = %s WHERE id = %s"
        try:
            yield run_id
        except Exception as exc:
            control.execute(finish, ("failed", f"{type(exc).__name__}: {exc}", run_id))
            raise
        control.execute(finish, ("ok", None, run_id))
