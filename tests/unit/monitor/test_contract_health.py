"""Health logic against the Docker Engine API's documented container shape (no engine runs here:
contract tests). The records below follow `GET /containers/{id}/json` (ContainerInspectResponse:
Name with a leading slash, State.Status, State.Health.Status, RestartCount) and `GET /containers/{id}/stats`
(memory_stats.usage), which is what the docker SDK's `container.attrs` and `container.stats()` return."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nextmavens.monitor.health import changes, check_health, probe, probe_targets, read_containers, snapshot

RECORDED = [
    {
        "Id": "4fa6e0f0c678",
        "Name": "/supabase-db",
        "RestartCount": 0,
        "State": {
            "Status": "running",
            "Running": True,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 1234,
            "ExitCode": 0,
            "StartedAt": "2026-11-26T08:00:00.000000000Z",
            "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []},
        },
    },
    {
        "Id": "9b1c2d3e4f50",
        "Name": "/shop-postgrest",
        "RestartCount": 2,
        "State": {"Status": "running", "Running": True, "Restarting": False, "ExitCode": 0},
    },
    {
        "Id": "aa11bb22cc33",
        "Name": "/shop-gotrue",
        "RestartCount": 0,
        "State": {
            "Status": "running",
            "Running": True,
            "ExitCode": 0,
            "Health": {"Status": "starting", "FailingStreak": 0, "Log": []},
        },
    },
]


class FakeContainer:
    def __init__(self, attrs: dict[str, Any], memory: int = 50_000_000) -> None:
        self.attrs = attrs
        self.name = attrs["Name"].lstrip("/")
        self.memory = memory

    def stats(self, stream: bool = False, one_shot: bool = False) -> dict[str, Any]:
        assert stream is False and one_shot is True
        return {"memory_stats": {"usage": self.memory, "limit": 8_000_000_000}}


class FakeContainers:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def list(self, all: bool = False) -> list[FakeContainer]:  # noqa: A002 - the SDK's keyword
        assert all is True  # stopped containers must be seen too
        return [FakeContainer(r) for r in self.records]


class FakeDocker:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.containers = FakeContainers(records)


def test_contract_health_reads_state_health_restarts_and_memory() -> None:
    found = read_containers(FakeDocker(RECORDED), with_memory=True)
    assert [(c.name, c.status, c.health, c.restarts, c.ok) for c in found] == [
        ("shop-gotrue", "running", "starting", 0, True),
        ("shop-postgrest", "running", None, 2, True),
        ("supabase-db", "running", "healthy", 0, True),
    ]
    assert all(c.memory_bytes == 50_000_000 for c in found)


def test_contract_health_alerts_on_state_change_only(tmp_path: Path) -> None:
    state = tmp_path / "health.json"
    sent: list[str] = []
    records = copy.deepcopy(RECORDED)
    check_health(FakeDocker(records), [], state, sent.append)
    assert sent == []  # all fine on the first run: nothing to say
    records[2]["State"]["Health"]["Status"] = "unhealthy"
    records[1]["RestartCount"] = 5
    records[1]["State"] = {"Status": "restarting", "Running": True, "Restarting": True}
    for _ in range(3):  # the same failure three runs in a row: alerted once
        check_health(FakeDocker(records), [], state, sent.append)
    assert sent == [
        "container:shop-gotrue is DOWN: running (unhealthy) (was running (starting))",
        "container:shop-postgrest is DOWN: restarting (was running)",
        "container:shop-postgrest restarted 3 time(s) since the last check (5 in all)",
    ]
    sent.clear()
    records[2]["State"]["Health"]["Status"] = "healthy"
    records[1]["State"] = {"Status": "running", "Running": True}
    del records[0]
    check_health(FakeDocker(records), [], state, sent.append)
    assert sent == [
        "container:shop-gotrue recovered: running (healthy)",
        "container:shop-postgrest recovered: running",
        "container:supabase-db disappeared",
    ]


def test_contract_health_unreachable_engine_is_one_alert(tmp_path: Path) -> None:
    class Broken:
        class containers:  # noqa: N801
            @staticmethod
            def list(all: bool = False) -> list[Any]:  # noqa: A002
                raise ConnectionError("Error while fetching server API version")

    sent: list[str] = []
    check_health(FakeDocker(RECORDED), [], tmp_path / "h.json", sent.append)
    check_health(Broken(), [], tmp_path / "h.json", sent.append)
    check_health(Broken(), [], tmp_path / "h.json", sent.append)
    assert sent == ["docker is DOWN: docker engine unreachable"]  # once; containers not "disappeared"
    check_health(FakeDocker(RECORDED), [], tmp_path / "h.json", sent.append)
    assert sent[1:] == ["docker engine reachable again"]


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, int]]]:
    codes = {"/ok": 200, "/auth": 401, "/down": 503}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(codes.get(self.path, 404))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", codes
    server.shutdown()
    server.server_close()


def test_probes_up_down_and_change_alerts(http_server: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    base, codes = http_server
    assert probe("ok", base + "/ok").ok
    assert probe("kong", base + "/auth").ok  # 401 from Kong: routed, the service answers
    down = probe("api", base + "/down")
    assert not down.ok and down.status == 503
    refused = probe("gone", "http://127.0.0.1:9/")
    assert not refused.ok and refused.status is None
    sent: list[str] = []
    targets = [("api", base + "/ok")]
    check_health(None, targets, tmp_path / "h.json", sent.append)
    codes["/ok"] = 502
    check_health(None, targets, tmp_path / "h.json", sent.append)
    check_health(None, targets, tmp_path / "h.json", sent.append)
    codes["/ok"] = 200
    check_health(None, targets, tmp_path / "h.json", sent.append)
    assert sent == [
        "docker is DOWN: docker engine unreachable",
        "probe:api is DOWN: HTTP 502 (was HTTP 200)",
        "probe:api recovered: HTTP 200",
    ]


def test_probe_targets_from_settings() -> None:
    env = {
        "NEXTMAVENS_PROBE_URLS": "studio=https://studio.example.test/, bad=ftp://x",
        "NEXTMAVENS_API_DOMAIN": "api.example.test",
    }
    assert probe_targets(env, ["shop"]) == [
        ("studio", "https://studio.example.test/"),
        ("project:shop", "https://shop.api.example.test/rest/v1/"),
    ]


def test_changes_ignores_steady_state() -> None:
    current = snapshot([], [])
    assert changes(current, current) == []
