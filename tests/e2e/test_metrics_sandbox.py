"""The collector's container sources against the sandbox's real Docker engine (issue 18): the Engine API's
container list and labels over its unix socket, the container's cgroup files as the guest lays them out (cgroup v1
there), the stats endpoint the collector falls back to, and the logs call error alerts quote. The modules are copied
into the guest and run with its own Python: they use the standard library only, as the resident collector does."""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.conftest import Sandbox
from tests.support.repo import REPO

pytestmark = pytest.mark.e2e

PROBE = r"""
import json, sys, time
sys.path.insert(0, "/tmp/nm-metrics-e2e")
from cgroups import CgroupReader
from dockerapi import DockerApi
api = DockerApi()
mine = [c for c in api.containers() if c.name == "e2e-metrics"]
reader = CgroupReader()
first = reader.usage(mine[0].id)
time.sleep(2)
second = reader.usage(mine[0].id)
stats = api.stats(mine[0].id)
print(json.dumps({
    "container": [mine[0].id, mine[0].name, mine[0].project, mine[0].service],
    "files": str(reader.found[mine[0].id]) if first else None,
    "first": [first.cpu_seconds, first.memory_bytes] if first else None,
    "second": [second.cpu_seconds, second.memory_bytes] if second else None,
    "stats": list(stats),
    "lines": api.last_lines(mine[0].id, 5),
}))
"""


def put(sandbox: Sandbox, path: str, text: str) -> None:
    encoded = base64.b64encode(text.encode()).decode()
    sandbox.check(f"mkdir -p /tmp/nm-metrics-e2e && echo {encoded} | base64 -d > {path}")


def test_containers_cgroups_stats_and_logs_from_the_real_engine(sandbox: Sandbox) -> None:
    for module in ("cgroups.py", "dockerapi.py"):
        put(sandbox, f"/tmp/nm-metrics-e2e/{module}", (REPO / "nextmavens" / "metrics" / module).read_text())
    put(sandbox, "/tmp/nm-metrics-e2e/probe.py", PROBE)
    sandbox.run("docker rm -f e2e-metrics >/dev/null 2>&1")
    try:
        sandbox.check(
            "docker run -d --name e2e-metrics --label com.docker.compose.project=nm-e2emetrics"
            " --label com.docker.compose.service=rest -e STANDIN_PORTS=8000 nextmavens-local/standin:1"
        )
        sandbox.check("for i in $(seq 50); do docker logs e2e-metrics 2>&1 | grep -q . && break; sleep 0.2; done")
        found = json.loads(sandbox.check("python3 /tmp/nm-metrics-e2e/probe.py", timeout=60))
    finally:
        sandbox.run("docker rm -f e2e-metrics >/dev/null 2>&1; rm -rf /tmp/nm-metrics-e2e")
    container_id, name, project, service = found["container"]
    assert len(container_id) == 64 and (name, project, service) == ("e2e-metrics", "nm-e2emetrics", "rest")
    assert found["files"] is not None, "no cgroup files found for the container"
    first_cpu, first_memory = found["first"]
    second_cpu, second_memory = found["second"]
    assert 0 < first_cpu <= second_cpu
    assert 1 * 2**20 < second_memory < 2 * 2**30
    stats_cpu, stats_memory = found["stats"]
    assert stats_cpu >= first_cpu and 0 < stats_memory < 2 * 2**30
    assert found["lines"], "the logs call returned no line"
