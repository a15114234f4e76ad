"""The service around the endpoints: JSON errors for every failure, the body limit, the rate limit on failed
authentication, a removed member, a declared but unapplied project, the last good backup, the health the
monitor recorded, and the commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import backups as records
from nextmavens.control.store import projects
from nextmavens.monitor.health import ProbeResult, check_health, probe_targets
from tests.integration.platform.harness import (
    ACME_MEMBERS,
    PlatformStage,
    org_yaml,
    running_service,
)
from tests.support.ports import free_port
from tests.support.projects import write_project, write_raw


@pytest.fixture(scope="module")
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def owner(platform_stage: PlatformStage) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform_stage.issue('owner@acme.test')[1]}"}


def error_of(answer: httpx.Response) -> dict[str, str]:
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return dict(body["error"])


def test_health_and_the_openapi_document(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    document = client.get("/openapi.json").json()
    assert {"/v1/me", "/v1/projects", "/v1/projects/{org}/{ref}/keys/rotate", "/v1/tokens/{token_id}"} <= set(
        document["paths"]
    )
    assert client.get("/docs").status_code == 404


def test_every_error_is_json(client: httpx.Client, owner: dict[str, str]) -> None:
    assert error_of(client.get("/nowhere"))["code"] == "not_found"
    assert client.get("/nowhere").status_code == 404
    wrong_method = client.delete("/v1/me", headers=owner)
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "method_not_allowed"
    invalid = client.post("/v1/tokens", json={"read_only": "perhaps", "extra": 1}, headers=owner)
    assert invalid.status_code == 422
    message = error_of(invalid)["message"]
    assert "read_only" in message and "extra" in message and "perhaps" not in message
    bad_ref = client.get("/v1/projects/acme/Not_A_Ref", headers=owner)
    assert bad_ref.status_code == 422 and error_of(bad_ref)["code"] == "invalid_request"
    bad_lifetime = client.post("/v1/tokens", json={"expires": "soon"}, headers=owner)
    assert bad_lifetime.status_code == 422 and "expires" in error_of(bad_lifetime)["message"]


def test_bodies_over_the_limit_are_refused(client: httpx.Client, owner: dict[str, str]) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    declared = client.post("/v1/tokens", content=big, headers={**owner, "Content-Type": "application/json"})
    assert declared.status_code == 413 and error_of(declared)["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 32768
        yield b'"}'

    streamed = client.post("/v1/tokens", content=chunks(), headers={**owner, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "too_large"


def test_an_internal_error_says_nothing_of_itself(
    platform_stage: PlatformStage, client: httpx.Client, owner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("postgresql://admin:hunter2-internal@db/x")

    monkeypatch.setattr(projects, "org_members", broken)
    answer = client.get("/v1/orgs/acme/members", headers=owner)
    assert answer.status_code == 500
    assert error_of(answer) == {
        "code": "internal",
        "message": "internal error; the service log names where it happened",
    }
    logs = "\n".join(platform_stage.logs.lines)
    assert "internal error RuntimeError in GET /v1/orgs/acme/members" in logs
    assert "hunter2-internal" not in logs


def test_failed_authentication_is_rate_limited_per_client_address(platform_stage: PlatformStage) -> None:
    _, valid = platform_stage.issue("dev@acme.test")
    settings = platform_stage.settings(auth_burst=3, auth_refill_s=60.0)
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        bad = {"Authorization": "Bearer nmp_" + "x" * 43}
        assert [client.get("/v1/me", headers=bad).status_code for _ in range(3)] == [401, 401, 401]
        before = platform_stage.audit_count()
        limited = client.get("/v1/me", headers=bad)
        assert limited.status_code == 429 and error_of(limited)["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # the address is held back whatever it sends next, and the refusals it keeps making are not each audited
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {valid}"}).status_code == 429
        assert platform_stage.audit_count() == before
        # another client (as nginx forwards it from loopback) is not
        elsewhere = {"X-Forwarded-For": "198.51.100.7"}
        assert client.get("/v1/me", headers={**bad, **elsewhere}).status_code == 401
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {valid}", **elsewhere}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_a_removed_members_tokens_stop_at_the_next_apply(platform_stage: PlatformStage, client: httpx.Client) -> None:
    _, token = platform_stage.issue("leaver@acme.test")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/me", headers=headers).json()["orgs"] == {"acme": "developer"}
    remaining = {email: role for email, role in ACME_MEMBERS.items() if email != "leaver@acme.test"}
    write_raw(platform_stage.stage.projects, "acme", "org.yaml", org_yaml("Acme", remaining))
    assert client.get("/v1/me", headers=headers).status_code == 200  # org.yaml alone changes nothing yet
    platform_stage.stage.apply()
    assert client.get("/v1/me", headers=headers).status_code == 401
    assert client.get("/v1/projects/acme/shop", headers=headers).status_code == 401


def test_a_declared_project_shows_before_it_is_applied(
    platform_stage: PlatformStage, client: httpx.Client, owner: dict[str, str]
) -> None:
    write_project(platform_stage.stage.projects, "acme", "draft")
    listed = {p["ref"]: p for p in client.get("/v1/projects", headers=owner).json()["projects"]}
    assert listed["draft"]["declared_state"] == "active" and listed["draft"]["applied_state"] is None
    assert listed["shop"]["applied_state"] == "active" and listed["shop"]["last_applied_at"]
    keys = client.get("/v1/projects/acme/draft/keys", headers=owner)
    assert keys.status_code == 409 and error_of(keys)["code"] == "not_applied"
    rotated = client.post("/v1/projects/acme/draft/keys/rotate", headers=owner)
    assert rotated.status_code == 409 and error_of(rotated)["code"] == "not_applied"
    assert platform_stage.stage.sql(
        "SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 1", dbname="nextmavens"
    ) == [("keys rotate", "failed")]
    (platform_stage.stage.projects / "acme" / "draft.yaml").unlink()
    assert client.get("/v1/projects/acme/draft", headers=owner).status_code == 404


def test_the_project_shows_its_last_good_backup(
    platform_stage: PlatformStage, client: httpx.Client, owner: dict[str, str]
) -> None:
    assert client.get("/v1/projects/acme/crm", headers=owner).json()["last_good_backup"] is None
    with connect_control(platform_stage.stage.server.dsn) as conn:
        backup_id = records.start(conn, "acme/crm", "crm", "manual", "age1test", 1)
        records.add_chunk(conn, backup_id, 0, 7, "file-id", "unique-id", 42, "0" * 64)
        records.complete(conn, backup_id, 1, 42, None, None)
    shown = client.get("/v1/projects/acme/crm", headers=owner).json()
    assert shown["last_good_backup"]["id"] == backup_id
    assert shown["api_url"] == "https://crm.api.example.test"


class Container:
    def __init__(self, name: str, status: str, health: str | None) -> None:
        self.name = name
        self.attrs = {"Name": f"/{name}", "State": {"Status": status, "Health": {"Status": health}}, "RestartCount": 0}


class Docker:
    """The docker SDK's client as `monitor health` uses it: containers.list(all=True)."""

    def __init__(self, containers: list[Container]) -> None:
        self.containers = self
        self._found = containers

    def list(self, all: bool) -> list[Container]:  # noqa: A002 - the SDK's name
        return self._found


def test_the_project_shows_its_health_as_the_monitor_recorded_it(
    platform_stage: PlatformStage, client: httpx.Client, owner: dict[str, str]
) -> None:
    before = client.get("/v1/projects/acme/shop", headers=owner).json()["health"]
    assert before == {"state": "unknown", "checked_at": None, "stale": False, "checks": []}
    docker = Docker(
        [
            Container("nm-shop-rest-1", "running", "healthy"),
            Container("nm-shop-auth-1", "restarting", None),
            Container("nm-crm-rest-1", "running", "healthy"),
        ]
    )

    def prober(name: str, url: str) -> ProbeResult:
        return ProbeResult(name, url, True, 401, None, 0.01)

    targets = probe_targets({"NEXTMAVENS_API_DOMAIN": "api.example.test"}, ["shop", "crm"])
    health_file = platform_stage.settings().health_file
    assert health_file is not None
    check_health(docker, targets, health_file, [].append, prober=prober)
    shop = client.get("/v1/projects/acme/shop", headers=owner).json()["health"]
    assert shop["state"] == "failing" and shop["stale"] is False and shop["checked_at"]
    assert shop["checks"] == [
        {"name": "container:nm-shop-auth-1", "ok": False, "detail": "restarting"},
        {"name": "container:nm-shop-rest-1", "ok": True, "detail": "running (healthy)"},
        {"name": "probe:project:shop", "ok": True, "detail": "HTTP 401"},
    ]
    crm = client.get("/v1/projects/acme/crm", headers=owner).json()["health"]
    assert crm["state"] == "ok" and [c["name"] for c in crm["checks"]] == [
        "container:nm-crm-rest-1",
        "probe:project:crm",
    ]


def test_token_commands(platform_stage: PlatformStage, client: httpx.Client) -> None:
    stage = platform_stage.stage
    created = stage.cli("token", "create", "--member", "admin@acme.test", "--project", "acme/shop", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert token["token"].startswith("nmp_") and (token["org"], token["project"]) == ("acme", "shop")
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/v1/me", headers=headers).json()["orgs"] == {"acme": "admin"}

    listed = stage.cli("token", "list", "--json", check=True)
    assert token["id"] in listed.stdout and token["token"] not in listed.stdout
    assert next(t for t in json.loads(listed.stdout) if t["id"] == token["id"])["last_used_at"]
    stored = stage.sql("SELECT token_hash FROM access_tokens WHERE id = %s", (token["id"],), dbname="nextmavens")
    assert stored[0][0] not in listed.stdout and token["token"] not in stored[0][0]

    assert stage.cli("token", "revoke", token["id"]).returncode == 0
    assert client.get("/v1/me", headers=headers).status_code == 401
    again = stage.cli("token", "revoke", "tok_unknown")
    assert again.returncode == 1 and "no token" in again.stderr

    plain = stage.cli("token", "create", "--member", "dev@acme.test", "--read-only", "--expires", "1d")
    assert plain.returncode == 0 and plain.stdout.strip().startswith("nmp_") and "shown only now" in plain.stderr

    for args, message in [
        (["--member", "nobody@acme.test"], "member of no org"),
        (["--member", "dev@acme.test", "--org", "globex"], "not a member of org"),
        (["--member", "dev@acme.test", "--project", "acme/nope"], "no applied project acme/nope"),
        (["--member", "dev@acme.test", "--expires", "forever"], "--expires"),
    ]:
        refused = stage.cli("token", "create", *args)
        assert refused.returncode == 1 and message in refused.stderr and "nmp_" not in refused.stdout + refused.stderr


def test_platform_serve_runs_the_service(platform_stage: PlatformStage) -> None:
    port = free_port()
    stage = platform_stage.stage
    process = subprocess.Popen(
        [sys.executable, "-m", "nextmavens.cli", "platform", "serve", "--listen", f"127.0.0.1:{port}"],
        env=stage.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.1)
        assert answer.json() == {"status": "ok"}
    finally:
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert "Application startup complete" in stderr


def test_platform_serve_fails_when_the_service_cannot_start(platform_stage: PlatformStage) -> None:
    """uvicorn returns as if stopped when the application's startup fails: the command must exit non-zero, or
    systemd's Restart=on-failure would leave the service down as "inactive"."""
    env = {**platform_stage.stage.env(), "NEXTMAVENS_DSN": f"postgresql://nobody@127.0.0.1:{free_port()}/nextmavens"}
    done = subprocess.run(
        [sys.executable, "-m", "nextmavens.cli", "platform", "serve", "--listen", f"127.0.0.1:{free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # uvicorn exits 3 itself in newer releases; older ones (Debian's) return, and the command exits 1
    assert done.returncode in (1, 3), done.stderr[-2000:]
    assert "Application startup failed" in done.stderr
