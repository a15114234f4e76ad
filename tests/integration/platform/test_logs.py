"""The logs endpoint against a real service with a stand-in `docker` program: lines stream as events, the argv
is exactly the one allowed, the bounds end the stream, and the reading process never outlives its request."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.platform.harness import PlatformStage, bearer, fake_docker, gone, running_service
from tests.support.projects import write_project

PATH = "/v1/projects/acme/shop/logs"


@pytest.fixture(scope="module")
def docker(platform_stage: PlatformStage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_docker(tmp_path_factory.mktemp("logs") / "bin") as folder:
        yield folder


@pytest.fixture(scope="module")
def dev(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "dev@acme.test", read_only=True)


def events(text: str) -> list[tuple[str, str]]:
    """(event name, data) of each event; comments left out."""
    found = []
    for block in text.split("\n\n"):
        fields = [line for line in block.split("\n") if line and not line.startswith(":")]
        if fields:
            name = next((f[7:] for f in fields if f.startswith("event: ")), "message")
            found.append((name, "\n".join(f[6:] for f in fields if f.startswith("data: "))))
    return found


def test_the_log_streams_as_events_with_exactly_the_allowed_argv(
    platform_stage: PlatformStage, docker: Path, dev: dict[str, str]
) -> None:
    answer = httpx.get(f"{platform_stage.url}{PATH}", params={"service": "auth"}, headers=dev, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    received = events(answer.text)
    lines = [data for name, data in received if name == "message"]
    assert lines[:5] == [f"2025-01-01T00:00:0{i}Z line {i}" for i in range(5)]
    assert "an error on stderr" in lines  # stdout and stderr, as `docker logs` prints them
    assert received[-1] == ("end", '{"reason": "eof", "exit_code": 0}')
    assert (docker / "argv").read_text().split("\n")[:-1] == ["logs", "--timestamps", "nm-shop-auth-1"]


def test_since_is_rewritten_and_bad_input_refused_before_anything_runs(
    platform_stage: PlatformStage, docker: Path, dev: dict[str, str]
) -> None:
    url = f"{platform_stage.url}{PATH}"
    assert httpx.get(url, params={"service": "rest", "since": "10m"}, headers=dev).status_code == 200
    argv = (docker / "argv").read_text().split("\n")[:-1]
    assert argv[:2] == ["logs", "--timestamps"] and argv[2].startswith("--since=20") and argv[3] == "nm-shop-rest-1"
    (docker / "argv").unlink()
    for params in (
        {"service": "rest", "since": "10 minutes"},
        {"service": "rest", "since": "--volumes"},
        {"service": "rest", "since": "2999-01-01T00:00:00Z"},
        {"service": "db"},
        {"service": "rest", "follow": "maybe"},
        {},
    ):
        answer = httpx.get(url, params=params, headers=dev)
        assert answer.status_code == 422, (params, answer.text)
    storage = httpx.get(url, params={"service": "storage"}, headers=dev)
    assert storage.status_code == 409 and storage.json()["error"]["code"] == "no_such_service"
    assert not (docker / "argv").exists()


def test_following_ends_at_the_time_bound_and_the_reader_with_it(platform_stage: PlatformStage, docker: Path) -> None:
    with running_service(platform_stage.settings(logs_max_seconds=1.5)) as url:
        started = time.monotonic()
        answer = httpx.get(
            f"{url}{PATH}",
            params={"service": "rest", "follow": "true"},
            headers=bearer(platform_stage, "dev@acme.test"),
            timeout=30,
        )
        took = time.monotonic() - started
    received = events(answer.text)
    assert any(data.startswith("tick") for _, data in received)
    assert received[-1][0] == "end" and '"reason": "max_seconds"' in received[-1][1]
    assert 1.4 < took < 6
    assert (docker / "argv").read_text().split("\n")[:-1] == ["logs", "--timestamps", "--follow", "nm-shop-rest-1"]
    assert gone(int((docker / "pid").read_text()))


def test_a_client_that_goes_away_stops_the_reader(platform_stage: PlatformStage, docker: Path) -> None:
    headers = bearer(platform_stage, "dev@acme.test")
    follow = {"service": "rest", "follow": "true"}
    with httpx.stream("GET", f"{platform_stage.url}{PATH}", params=follow, headers=headers, timeout=30) as answer:
        assert answer.status_code == 200
        ticks = 0
        for line in answer.iter_lines():
            ticks += line.startswith("data: tick")
            if ticks == 3:
                pid = int((docker / "pid").read_text())
                assert not gone(pid, within=0.3)  # still following while the client reads
                break
    assert gone(pid)


def test_the_byte_and_line_bounds_end_the_stream(platform_stage: PlatformStage, docker: Path) -> None:
    (docker / "count").write_text("50")
    try:
        headers = bearer(platform_stage, "dev@acme.test")
        with running_service(platform_stage.settings(logs_max_lines=3)) as url:
            received = events(httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=headers).text)
        assert [name for name, _ in received] == ["message"] * 3 + ["end"]
        assert '"reason": "max_lines"' in received[-1][1]
        with running_service(platform_stage.settings(logs_max_bytes=100)) as url:
            received = events(httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=headers).text)
        assert sum(len(data) + 1 for name, data in received if name == "message") <= 100
        assert '"reason": "max_bytes"' in received[-1][1]
        assert gone(int((docker / "pid").read_text()))
    finally:
        (docker / "count").unlink()


def test_a_token_holds_a_bounded_number_of_streams(platform_stage: PlatformStage, docker: Path) -> None:
    _, token = platform_stage.issue("dev@acme.test")
    headers = {"Authorization": f"Bearer {token}"}
    follow = {"service": "rest", "follow": "true"}
    with running_service(platform_stage.settings(logs_streams_per_token=1)) as url:
        with httpx.stream("GET", f"{url}{PATH}", params=follow, headers=headers, timeout=30) as first:
            assert first.status_code == 200
            reading = first.iter_lines()  # kept: an abandoned iterator closes the response
            next(reading)
            second = httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=headers)
            assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_streams"
            another_token = bearer(platform_stage, "dev@acme.test")
            other = httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=another_token)
            assert other.status_code == 200
        deadline = time.monotonic() + 5
        while httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=headers).status_code == 429:
            assert time.monotonic() < deadline, "the slot was never given back"
            time.sleep(0.1)


def test_with_a_privileged_prefix_the_service_runs_only_the_container_logs_command(
    platform_stage: PlatformStage, tmp_path: Path
) -> None:
    with fake_docker(tmp_path / "prefix", name="fake-sudo") as folder:
        settings = platform_stage.settings(privileged_argv=(str(folder / "fake-sudo"), "-n", "WRAPPER", "nextmavens"))
        with running_service(settings) as url:
            answer = httpx.get(
                f"{url}{PATH}",
                params={"service": "auth", "since": "2h"},
                headers=bearer(platform_stage, "dev@acme.test"),
            )
    assert answer.status_code == 200 and "line 0" in answer.text
    argv = (folder / "argv").read_text().split("\n")[:-1]
    assert argv[:5] == ["-n", "WRAPPER", "nextmavens", "container-logs", "acme/shop"]
    assert argv[5:7] == ["auth", "--since"] and argv[7].endswith("Z") and len(argv) == 8


def test_without_docker_the_answer_is_unavailable_and_audited(platform_stage: PlatformStage, tmp_path: Path) -> None:
    settings = platform_stage.settings(privileged_argv=(str(tmp_path / "missing"),))
    headers = bearer(platform_stage, "dev@acme.test")
    before = platform_stage.audit_count()
    with running_service(settings) as url:
        answer = httpx.get(f"{url}{PATH}", params={"service": "rest"}, headers=headers)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "logs_unavailable"
    assert platform_stage.audit_count() - before == 1


def container_logs(platform_stage: PlatformStage, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nextmavens.cli", "container-logs", *args]
    return subprocess.run(command, env=platform_stage.stage.env(), capture_output=True, text=True, timeout=60)


def test_the_command_checks_every_argument_then_becomes_docker_logs(
    platform_stage: PlatformStage, docker: Path
) -> None:
    done = container_logs(platform_stage, "acme/crm", "rest", "--since", "2h")
    assert done.returncode == 0, done.stderr
    assert "line 0" in done.stdout and "an error on stderr" in done.stderr
    argv = (docker / "argv").read_text().split("\n")[:-1]
    assert argv[:2] == ["logs", "--timestamps"] and argv[2].startswith("--since=") and argv[3:] == ["nm-crm-rest-1"]
    (docker / "argv").unlink()
    for args, says in (
        (("acme/nope", "rest"), "no applied project acme/nope"),
        (("globex/shop", "rest"), "no applied project globex/shop"),
        (("acme/shop", "storage"), "no storage service"),
        (("acme/shop", "db"), "service must be one of"),
        (("../etc", "rest"), "ORG/REF"),
        (("acme/shop", "rest", "--since", "--volumes"), "since takes"),
        (("acme/shop", "rest", "--tail", "5"), "No such option"),
        (("acme/shop", "rest", "--projects", "/tmp"), "No such option"),
        (("acme/shop", "rest", "--dsn", "postgresql://elsewhere"), "No such option"),
    ):
        refused = container_logs(platform_stage, *args)
        assert refused.returncode != 0 and says in refused.stderr, (args, refused.stderr)
    assert not (docker / "argv").exists()


def test_a_declared_but_unapplied_project_has_no_logs_or_migrations_yet(
    platform_stage: PlatformStage, docker: Path
) -> None:
    path = write_project(platform_stage.stage.projects, "acme", "fresh")
    try:
        headers = bearer(platform_stage, "dev@acme.test")
        for url, params in (
            ("/v1/projects/acme/fresh/logs", {"service": "rest"}),
            ("/v1/projects/acme/fresh/migrations", {}),
        ):
            answer = httpx.get(f"{platform_stage.url}{url}", params=params, headers=headers)
            assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_applied", answer.text
    finally:
        path.unlink()
