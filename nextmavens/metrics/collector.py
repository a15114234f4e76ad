"""The resident collector: once a minute, every container's CPU and memory, each project's database and traffic, and
the host's memory, CPU and disk, written to the control database in one batch; the tiers rolled up and pruned
every MAINTAIN_EVERY minutes.

Sources are passed in (tests and the benchmark give generated cgroup files and log lines in the real formats), and
so is the time of each tick, so one tick is tested without waiting for a minute.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from nextmavens.control.store import metrics as store
from nextmavens.control.store.projects import live_projects
from nextmavens.metrics.accesslog import LogFollower, Traffic, traffic_by_ref
from nextmavens.metrics.cgroups import CgroupReader
from nextmavens.metrics.dbstats import SIZE_EVERY, database_stats
from nextmavens.metrics.dockerapi import Container, DockerApi, DockerError
from nextmavens.metrics.hoststats import host_sample
from nextmavens.metrics.rates import Rates
from nextmavens.metricsview import HOST

MAINTAIN_EVERY = 5  # minutes
REFRESH_EVERY = 5  # minutes between reads of the container list and the project list
PROJECT_PREFIX = "nm-"  # nextmavens.naming.compose_project_name


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Sources:
    connect: Callable[[], psycopg.Connection]  # the control database (the cluster's statistics are read through it)
    docker: DockerApi | None
    cgroups: CgroupReader
    access_log: LogFollower | None
    api_domain: str
    proc: Path = Path("/proc")
    disks: tuple[str, ...] = ("/",)


@dataclass
class Collector:
    sources: Sources
    rates: Rates = field(default_factory=Rates)
    ids: store.SeriesIds = field(default_factory=store.SeriesIds)
    conn: psycopg.Connection | None = None
    projects: dict[str, str] = field(default_factory=dict)  # ref -> org
    containers: list[Container] = field(default_factory=list)
    ticks: int = 0
    latest: dict[str, dict[str, float]] = field(default_factory=dict)  # the last minute's samples, by scope
    traffic: dict[str, Traffic] = field(default_factory=dict)  # the last minute's requests, by scope
    db_sizes: dict[str, float] = field(default_factory=dict)
    on_minute: list[Callable[[int, dict[str, dict[str, float]], dict[str, Traffic]], None]] = field(
        default_factory=list
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = self.sources.connect()
            self.ids = store.SeriesIds()
        return self.conn

    def _refresh(self, conn: psycopg.Connection) -> None:
        self.projects = {ref: org for org, ref in live_projects(conn)}
        if self.sources.docker is not None:
            try:
                self.containers = self.sources.docker.containers()
            except DockerError as exc:
                log(f"metrics: containers not listed: {exc}")
            self.sources.cgroups.forget({c.id for c in self.containers})

    def scope_of(self, ref: str) -> str | None:
        org = self.projects.get(ref)
        return f"{org}/{ref}" if org else None

    def sample(self, now: float, conn: psycopg.Connection | None) -> dict[str, dict[str, float]]:
        samples: dict[str, dict[str, float]] = {HOST: {}}
        gauges, (busy, total) = host_sample(self.sources.proc, self.sources.disks)
        samples[HOST].update(gauges)
        cpu = self.rates.ratio("host:cpu", busy, total)
        if cpu is not None:
            samples[HOST]["cpu_pct"] = round(100.0 * cpu, 2)
        missing = False
        for container in self.containers:
            scope, suffix = HOST, container.name
            if container.project and container.project.startswith(PROJECT_PREFIX):
                project_scope = self.scope_of(container.project[len(PROJECT_PREFIX) :])
                if project_scope is not None:
                    scope, suffix = project_scope, container.service or container.name
            usage = self.sources.cgroups.usage(container.id)
            if usage is None:
                missing = True
                continue
            values = samples.setdefault(scope, {})
            values[f"mem_mb:{suffix}"] = round(usage.memory_bytes / 2**20, 1)
            rate = self.rates.per_second(f"cpu:{container.id}", usage.cpu_seconds, now)
            if rate is not None:
                values[f"cpu_pct:{suffix}"] = round(100.0 * rate, 2)
        if missing:
            self.ticks = -1 % REFRESH_EVERY  # a container came or went: list them again next minute
        if conn is not None:
            with_size = self.ticks % SIZE_EVERY == 0
            for ref, stats in database_stats(conn, list(self.projects), with_size).items():
                db_scope = self.scope_of(ref)
                if db_scope is None:
                    continue
                values = samples.setdefault(db_scope, {})
                values["db_connections"] = float(stats.connections)
                if stats.size_bytes is not None:
                    self.db_sizes[db_scope] = round(stats.size_bytes / 2**20, 2)
                if db_scope in self.db_sizes:
                    values["db_size_mb"] = self.db_sizes[db_scope]
                tps = self.rates.per_second(f"xact:{ref}", stats.transactions, now)
                if tps is not None:
                    values["db_tps"] = round(tps, 3)
        self.traffic = {}
        if self.sources.access_log is not None:
            by_ref, _ = traffic_by_ref(self.sources.access_log.read_lines(), self.sources.api_domain)
            for ref, traffic in by_ref.items():
                hit_scope = self.scope_of(ref)
                if hit_scope is not None:
                    self.traffic[hit_scope] = traffic
                    samples.setdefault(hit_scope, {}).update(traffic.figures())
            for quiet in (f"{org}/{ref}" for ref, org in self.projects.items()):
                if quiet not in self.traffic:
                    samples.setdefault(quiet, {}).update(Traffic().figures())
        return samples

    def tick(self, minute: int) -> dict[str, dict[str, float]]:
        """One minute: sample, write, and (every MAINTAIN_EVERY minutes) roll up and prune."""
        conn: psycopg.Connection | None
        try:
            conn = self._connection()
            if self.ticks % REFRESH_EVERY == 0:
                self._refresh(conn)
        except psycopg.Error as exc:
            log(f"metrics: control database unreachable ({type(exc).__name__}); this minute is not stored")
            self.conn, conn = None, None
        samples = self.sample(time.time(), conn)
        if conn is not None:
            try:
                store.write_minute(conn, self.ids, minute, samples)
                if (minute // 60) % MAINTAIN_EVERY == 0:
                    store.maintain(conn, minute)
            except psycopg.Error as exc:
                log(f"metrics: writing minute {minute} failed ({type(exc).__name__})")
                conn.close()
                self.conn = None
        with self.lock:
            self.latest = samples
        for listener in self.on_minute:
            listener(minute, samples, self.traffic)
        self.ticks += 1
        return samples

    def run(self, stop: threading.Event) -> None:
        """Tick at every minute boundary until `stop` is set."""
        while not stop.is_set():
            now = time.time()
            minute = int(now // 60 * 60 + 60)
            if stop.wait(minute - now):
                break
            try:
                self.tick(minute)
            except Exception as exc:  # noqa: BLE001 - one bad minute must not end the collector
                log(f"metrics: minute {minute} failed: {type(exc).__name__}: {exc}")
