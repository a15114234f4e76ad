"""`nextmavens doctor` end to end on this machine: projects applied on a real PostgreSQL, then the edge with a real
nginx, the Kong/Supavisor/Realtime stand-ins (tests/support/standins.py) and a docker stand-in answering
`ps`, `inspect` and `exec` from a state file. The doctor passes; then each broken piece makes it exit 1 naming
exactly that check."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.edgehost import Edge, local_edge
from tests.support.engine import Stage
from tests.support.localnginx import echo_server
from tests.support.loopback import QuietHandler, serving
from tests.support.ports import free_port
from tests.support.projects import write_project
from tests.support.standins import KongProxyStandIn, serve_proxy

EVOLUTION_KEY = "evolution-platform-key-0123456789"
PINS = {"rest": "postgrest/postgrest:v14.5", "auth": "supabase/gotrue:v2.177.0"}

# docker stand-in: containers come from <state>.json; `exec` succeeds unless the container's "ready" is false.
DOCKER = """#!{python}
import json, sys
from pathlib import Path

STATE = Path({state!r})
args = sys.argv[1:]
with open(STATE.with_suffix(".log"), "a") as log:
    log.write(" ".join(args) + "\\n")
containers = json.loads(STATE.read_text()) if STATE.exists() else {{}}
if args[0] == "compose":
    sys.exit(0)
if args[0] == "ps" and "-aq" in args:
    print("\\n".join(containers))
    sys.exit(0)
if args[0] == "ps":  # apply's running_refs: the compose project of each running container
    print("\\n".join(c.get("project", "") for c in containers.values() if c["status"] == "running"))
    sys.exit(0)
if args[0] == "inspect":
    print(json.dumps([
        {{
            "Name": "/" + name,
            "Config": {{
                "Image": c["image"],
                "Labels": {{
                    "com.docker.compose.project": c.get("project", ""),
                    "com.docker.compose.service": c.get("service", ""),
                }},
            }},
            "State": {{"Status": c["status"]}},
            "HostConfig": {{"Memory": c["memory"]}},
        }}
        for name, c in containers.items() if name in args[1:]
    ]))
    sys.exit(0)
if args[0] == "exec":
    ready = containers.get(args[1], {{}}).get("ready", True)
    print("OK" if ready else "ERROR: connection refused to http://127.0.0.1:3001/ready")
    sys.exit(0 if ready else 1)
sys.exit(1)
"""


def evolution_standin() -> AbstractContextManager[int]:
    """Evolution's API as far as the doctor asks it: 200 with the platform key, 401 otherwise; yields the port."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.headers.get("apikey") == EVOLUTION_KEY:
                self.reply(200, b"[]")
            else:
                self.reply(401, b'{"error": "Unauthorized"}')

    return serving(Handler)


class Host:
    def __init__(self, edge: Edge, state: Path, doctor_config: Path) -> None:
        self.edge, self.state, self.doctor_config = edge, state, doctor_config

    @property
    def containers(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.state.read_text())  # type: ignore[no-any-return]

    def set(self, name: str, **fields: Any) -> None:
        containers = self.containers
        containers[name].update(fields)
        self.state.write_text(json.dumps(containers))

    def run_projects(self, refs: list[str]) -> None:
        """The containers `compose up` would have started for these projects, with their limits and pins."""
        containers = self.containers
        for ref in refs:
            for service, image in PINS.items():
                containers[f"nm-{ref}-{service}-1"] = {
                    "image": image, "memory": 128 << 20, "status": "running",
                    "project": f"nm-{ref}", "service": service,
                }  # fmt: skip
        self.state.write_text(json.dumps(containers))


@pytest.fixture
def doctor_host(stage: Stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    monkeypatch.setenv("EVOLUTION_API_KEY", EVOLUTION_KEY)
    state = tmp_path / "containers.json"
    state.write_text(json.dumps({"nextmavens-kong": {"image": "kong:2.8.1", "memory": 256 << 20, "status": "running"}}))
    docker = tmp_path / "docker-doctor-standin"
    docker.write_text(DOCKER.format(python=sys.executable, state=str(state)))
    docker.chmod(0o755)
    edges = local_edge(tmp_path, lambda kong: serve_proxy(KongProxyStandIn(kong)))
    edge = next(edges)
    try:
        document = yaml.safe_load(edge.config.read_text())
        document["docker"] = [str(docker)]
        edge.config.write_text(yaml.safe_dump(document))
        with echo_server("postgres-meta") as meta_port, evolution_standin() as evolution_port:
            doctor_config = tmp_path / "doctor.yaml"
            doctor_config.write_text(
                yaml.safe_dump(
                    {
                        "shared_containers": {"nextmavens-kong": "kong:2.8.1"},
                        "images_are_substitutes": False,
                        "postgres_meta_url": f"http://127.0.0.1:{meta_port}",
                        "evolution_url": f"http://127.0.0.1:{evolution_port}",
                    }
                )
            )
            yield Host(edge, state, doctor_config)
    finally:
        edges.close()


def doctor(stage: Stage, host: Host, *extra: str):
    return stage.cli(
        "doctor", "--json", "--edge-config", str(host.edge.config), "--doctor-config", str(host.doctor_config), *extra
    )


def failed_checks(result) -> set[tuple[str, str]]:
    return {(c["name"], c["target"]) for c in json.loads(result.stdout) if c["ok"] is False}


@pytest.fixture
def applied(stage: Stage, doctor_host: Host) -> Host:
    write_project(stage.projects, "acme", "shop", domains=["api.shop.acme.test"])
    write_project(stage.projects, "globex", "desk", state="suspended")
    first = stage.cli("apply", "--yes", "--edge-config", str(doctor_host.edge.config))
    assert first.returncode == 0, first.stdout + first.stderr
    doctor_host.run_projects(["shop"])
    return doctor_host


def test_doctor_passes_on_a_healthy_edge_and_skips_only_what_is_off(stage: Stage, applied: Host) -> None:
    result = doctor(stage, applied)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = json.loads(result.stdout)
    assert all(set(c) >= {"name", "target", "ok", "detail", "hint"} for c in checks)
    by = {(c["name"], c["target"]): c for c in checks}
    assert by[("kong config", "kong")]["ok"] is True and by[("kong status", "kong")]["ok"] is True
    assert by[("postgrest ready", "shop")]["ok"] and by[("gotrue health", "shop")]["ok"]
    assert by[("supavisor tenant", "shop")]["ok"] and by[("realtime tenant", "shop")]["ok"]
    assert by[("supavisor tenant", "desk")]["detail"] == "suspended: not listed"
    assert by[("nginx", "shop.api.example.test")]["detail"] == "HTTP 200"
    assert by[("nginx", "api.shop.acme.test")]["ok"] is True
    assert by[("nginx", "desk.api.example.test")]["detail"] == "suspended: 503"
    assert by[("postgres-meta", "nextmavens-meta")]["ok"] and by[("evolution api", "nextmavens-evolution")]["ok"]
    assert by[("image pin", "shop rest")]["ok"] and by[("memory limit", "nextmavens-kong")]["ok"]
    assert [c for c in checks if c["ok"] is None] == [by[("certificate", "all names")]]  # off in this edge config
    calls = applied.state.with_suffix(".log").read_text()
    assert "exec nm-shop-rest-1 postgrest --ready" in calls and "exec nm-shop-auth-1 wget" in calls
    # Read-only: nothing was loaded into Kong or written to the tenant APIs by the doctor.
    assert applied.edge.kong.loads == 1
    text = stage.cli("doctor", "--edge-config", str(applied.edge.config), "--doctor-config", str(applied.doctor_config))
    assert text.returncode == 0 and "0 failed, 1 skipped" in text.stdout, text.stdout + text.stderr


def test_kong_without_the_rendered_config_fails_the_doctor(stage: Stage, applied: Host) -> None:
    applied.edge.kong.admin.hash = "0" * 32  # a restarted Kong, back on its seed config
    result = doctor(stage, applied)
    assert result.returncode == 1
    assert failed_checks(result) >= {("kong config", "kong")}
    hint = next(c["hint"] for c in json.loads(result.stdout) if c["name"] == "kong config")
    assert "nextmavens apply" in hint


def test_a_missing_tenant_fails_the_doctor(stage: Stage, applied: Host) -> None:
    del applied.edge.realtime.tenants["shop"]
    result = doctor(stage, applied)
    assert result.returncode == 1 and failed_checks(result) == {("realtime tenant", "shop")}, result.stdout


def test_a_container_without_memory_limit_fails_the_doctor(stage: Stage, applied: Host) -> None:
    applied.set("nm-shop-rest-1", memory=0)
    result = doctor(stage, applied)
    assert result.returncode == 1 and failed_checks(result) == {("memory limit", "shop rest")}, result.stdout


def test_an_unready_postgrest_an_unpinned_image_and_a_refused_key_fail_the_doctor(
    stage: Stage, applied: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied.set("nm-shop-rest-1", ready=False, image="postgrest/postgrest:v12.2.12")
    monkeypatch.setenv("EVOLUTION_API_KEY", "a-stale-key")
    result = doctor(stage, applied)
    assert result.returncode == 1
    assert failed_checks(result) == {
        ("postgrest ready", "shop"),
        ("image pin", "shop rest"),
        ("evolution api", "nextmavens-evolution"),
    }, result.stdout


def test_an_unreachable_kong_admin_fails_its_status_and_leaves_its_config_unconfirmed(
    stage: Stage, applied: Host
) -> None:
    document = yaml.safe_load(applied.edge.config.read_text())
    document["settings"]["kong_admin_url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    applied.edge.config.write_text(yaml.safe_dump(document))
    result = doctor(stage, applied)
    assert result.returncode == 1
    assert failed_checks(result) == {("kong status", "kong"), ("kong config", "kong")}, result.stdout
