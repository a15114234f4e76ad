"""End-to-end: the resident metrics collector as the site converge leaves it on the booted sandbox (issue 18).

After this tree's converge, nextmavens-metrics.service is active, logged in to PostgreSQL as its own role
(nextmavens_metrics, migration 1020) and not as the admin, and it has written minutes into the control database:
containers' CPU and memory read from the real Docker engine's containers (their cgroup files, the Engine API's list
and labels), the example project's database statistics, and the host's memory and disk. Its journal holds no error
line. The host is converged from this tree by the module's fixture (tests/e2e/conftest.py runs test_sandbox.py first, so
in a whole session the first converges are that file's)."""

from __future__ import annotations

import shlex
import time
from typing import Any

import pytest

from .conftest import Sandbox
from .test_sandbox import converge, group_data

pytestmark = pytest.mark.e2e

UNIT = "nextmavens-metrics.service"
WAIT_S = 200  # two minute boundaries after a restart (rates need two samples), and the converge's slack

LATEST = """
SELECT c.name, s.name, u.val
FROM metric_raw r JOIN metric_scopes c ON c.id = r.scope,
     unnest(r.series, r.vals) AS u(id, val) JOIN metric_series s ON s.id = u.id
WHERE r.ts = (SELECT max(ts) FROM metric_raw WHERE ts >= {since})
"""


def psql(sandbox: Sandbox, data: dict[str, Any], query: str) -> list[str]:
    out = sandbox.check(
        "docker exec nextmavens-postgres psql -X -qtA -v ON_ERROR_STOP=1"
        f" -U {shlex.quote(data['postgres_admin_user'])} -d nextmavens -c {shlex.quote(query)}"
    )
    return [line for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def converged(sandbox: Sandbox) -> dict[str, Any]:
    data = group_data(sandbox)
    result = converge(sandbox, pull_host_commits=True)
    return {"data": data, "converge": result}


def test_the_collector_unit_runs_as_its_own_role_and_writes_minutes(
    sandbox: Sandbox, converged: dict[str, Any]
) -> None:
    data = converged["data"]
    since = int(sandbox.check("date +%s").strip())
    assert sandbox.run(f"systemctl is-active {UNIT}").stdout.strip() == "active", sandbox.run(
        f"systemctl status --no-pager {UNIT}; journalctl -u {UNIT} --no-pager -n 40"
    ).stdout
    # Two minutes written after `since`: the second holds the CPU rates (a rate needs two samples).
    deadline = time.monotonic() + WAIT_S
    minutes: list[str] = []
    while time.monotonic() < deadline:
        minutes = psql(sandbox, data, f"SELECT DISTINCT ts FROM metric_raw WHERE ts >= {since:d}")  # noqa: S608
        if len(minutes) >= 2:
            break
        time.sleep(5)  # the collector writes at minute boundaries: poll the table, bounded by WAIT_S
    journal = sandbox.run(f"journalctl -u {UNIT} --no-pager --since @{since - 300}").stdout
    assert len(minutes) >= 2, f"the collector wrote {len(minutes)} minute(s) in {WAIT_S}s:\n{journal[-3000:]}"

    samples: dict[str, dict[str, float]] = {}
    for line in psql(sandbox, data, LATEST.format(since=since)):
        scope, name, value = line.split("|")
        samples.setdefault(scope, {})[name] = float(value)
    host = samples.get("host", {})
    # the host: memory, CPU, the root disk
    assert 0 < host["mem_used_pct"] < 100 and 0 <= host["cpu_pct"] <= 100, host
    assert 0 < host["disk_used_pct:/"] < 100, host
    # the shared containers (not a project's): memory and CPU from their cgroups, names from the Engine API
    assert host["mem_mb:nextmavens-postgres"] > 5, host
    assert host["cpu_pct:nextmavens-postgres"] >= 0, host
    # the example project (acme/shop, applied by the converge): its containers by compose labels, its database
    shop = samples.get("acme/shop", {})
    assert shop.get("mem_mb:rest", 0) > 1 and shop.get("mem_mb:auth", 0) > 1, shop
    assert "cpu_pct:rest" in shop, shop
    # its database: size, connections (0 when PostgREST's pool is idle), transactions per second (two samples)
    assert shop["db_size_mb"] > 1 and shop["db_connections"] >= 0 and shop["db_tps"] >= 0, shop

    # its connection is its own role's
    users = psql(
        sandbox, data, "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'nextmavens'"
        " AND application_name = 'nextmavens' AND pid <> pg_backend_pid()",
    )  # fmt: skip
    assert "nextmavens_metrics" in users, users
    # no minute failed since the converge
    assert "metrics:" not in journal, journal[-3000:]
