"""The collector against a real PostgreSQL (its statistics views and the control database) and a real nginx's
structured log; container CPU and memory from generated cgroup v2 and v1 files in the kernel's formats (the real
Docker engine is the sandbox's: tests/e2e/test_metrics_sandbox.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nextmavens.control.db import connect_cluster, connect_control
from nextmavens.control.store import metrics as store
from nextmavens.control.store.projects import add_project_if_missing
from nextmavens.metrics.accesslog import LogFollower
from nextmavens.metrics.cgroups import CgroupReader
from nextmavens.metrics.collector import Collector, Sources
from nextmavens.metrics.dockerapi import Container
from nextmavens.naming import project_names
from tests.support.metricsedge import metrics_edge

pytestmark = pytest.mark.integration


class Engine:
    """The container list as the Engine API's /containers/json gives it (labels compose sets)."""

    def __init__(self, containers: list[Container]) -> None:
        self.listed = containers

    def containers(self) -> list[Container]:
        return list(self.listed)


def write_v2(root: Path, container_id: str, cpu_usec: int, memory: int) -> None:
    folder = root / "system.slice" / f"docker-{container_id}.scope"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.stat").write_text(
        f"usage_usec {cpu_usec}\nuser_usec {cpu_usec // 2}\nsystem_usec {cpu_usec // 2}\nnr_periods 0\n"
    )
    (folder / "memory.current").write_text(f"{memory}\n")


def write_v1(root: Path, container_id: str, cpu_ns: int, memory: int) -> None:
    for controller, name, value in (("cpuacct", "cpuacct.usage", cpu_ns), ("memory", "memory.usage_in_bytes", memory)):
        folder = root / controller / "docker" / container_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"{value}\n")


@pytest.fixture
def control(fresh_pg) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    conn = connect_control(fresh_pg.dsn)
    add_project_if_missing(conn, "shop", "acme", "Shop", "active")
    add_project_if_missing(conn, "crm", "acme", "CRM", "active")
    with connect_cluster(fresh_pg.dsn) as cluster:
        cluster.execute(f'CREATE DATABASE "{project_names("shop").database}"')
    try:
        yield conn
    finally:
        conn.close()


def test_one_minute_of_containers_databases_traffic_and_host(fresh_pg, control, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cgroups = tmp_path / "cgroup"
    write_v2(cgroups, "a" * 64, 1_000_000, 100 * 2**20)
    write_v1(cgroups, "b" * 64, 5 * 10**9, 30 * 2**20)
    write_v2(cgroups, "c" * 64, 0, 400 * 2**20)
    engine = Engine(
        [
            Container("a" * 64, "nm-shop-rest-1", "nm-shop", "rest"),
            Container("b" * 64, "nm-shop-auth-1", "nm-shop", "auth"),
            Container("c" * 64, "nextmavens-postgres", "supabase", "db"),
        ]
    )
    with metrics_edge(tmp_path) as edge:
        collector = Collector(
            Sources(
                connect=lambda: connect_control(fresh_pg.dsn),
                docker=engine,  # type: ignore[arg-type]
                cgroups=CgroupReader(cgroups),
                access_log=LogFollower(edge.log),
                api_domain=edge.config.api_domain,
                disks=(str(tmp_path),),
            )
        )
        first = collector.tick(1_790_000_040)
        assert "cpu_pct:rest" not in first.get("acme/shop", {})  # a rate needs two samples
        assert first["acme/shop"]["mem_mb:rest"] == 100.0 and first["acme/shop"]["mem_mb:auth"] == 30.0
        assert first["host"]["mem_mb:nextmavens-postgres"] == 400.0

        statuses = [edge.get("shop.api.example.test", p) for p in ("/", "/status/404", "/status/503", "/x?y=1")]
        statuses += [edge.get("crm.acme.test", "/status/500"), edge.get("api.crm.acme.test", "/")]
        statuses.append(edge.get("studio.example.test", "/"))  # not a project: not counted
        assert statuses[:6] == [200, 404, 503, 200, 500, 200]
        with psycopg.connect(fresh_pg.dsn_for(project_names("shop").database)) as tenant:
            for _ in range(3):
                tenant.execute("SELECT 1")
                tenant.commit()
        time.sleep(1.0)
        write_v2(cgroups, "a" * 64, 1_000_000 + 500_000, 120 * 2**20)  # half a CPU second more
        write_v1(cgroups, "b" * 64, 5 * 10**9 + 10**8, 31 * 2**20)
        second = collector.tick(1_790_000_100)

    shop, crm, host = second["acme/shop"], second["acme/crm"], second["host"]
    assert shop["requests"] == 4 and shop["http_4xx"] == 1 and shop["http_5xx"] == 1
    assert crm["requests"] == 2 and crm["http_5xx"] == 1  # custom domains through nginx's map
    assert 0 <= shop["p50_ms"] <= shop["p95_ms"] <= shop["p99_ms"] < 1000
    assert 0 < shop["cpu_pct:rest"] < 50  # 0.5 s of CPU over the seconds between the ticks
    assert shop["mem_mb:rest"] == 120.0
    assert shop["db_size_mb"] > 1 and shop["db_connections"] >= 0 and shop["db_tps"] > 0
    assert "db_size_mb" not in crm  # no database: no figures invented
    assert 0 < host["mem_used_pct"] < 100 and 0 <= host["cpu_pct"] <= 100
    assert f"disk_used_pct:{tmp_path}" in host

    stored = store.latest(control, "acme/shop")
    assert stored is not None and stored[0] == 1_790_000_100 and stored[1]["requests"] == 4.0


def test_the_log_is_followed_through_rotation_and_truncation(tmp_path: Path) -> None:
    with metrics_edge(tmp_path) as edge:
        follower = LogFollower(edge.log)
        assert follower.read_lines() == []  # starts at the end: what was logged before it started is not counted
        for _ in range(3):
            edge.get("shop.api.example.test", "/")
        time.sleep(0.2)
        # logrotate's `create`: renamed, then nginx told to reopen; lines written in between land in the old file
        edge.log.rename(edge.log.with_suffix(".log.1"))
        edge.get("shop.api.example.test", "/late")
        edge.reopen_logs()
        deadline = time.monotonic() + 5
        while not edge.log.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2):
            edge.get("shop.api.example.test", "/new")
        time.sleep(0.2)
        lines = follower.read_lines()
        assert [line.count(b'"u":"/new"') for line in lines] == [0, 0, 0, 0, 1, 1]
        assert sum(b'"u":"/late"' in line for line in lines) == 1
        # copytruncate: the file is emptied in place and written from its start again
        edge.log.write_bytes(b"")
        edge.get("shop.api.example.test", "/after-truncate")
        time.sleep(0.2)
        lines = follower.read_lines()
        assert len(lines) == 1 and b"/after-truncate" in lines[0]
        follower.close()
