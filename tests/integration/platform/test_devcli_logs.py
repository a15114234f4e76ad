"""`nextmavens logs` and `nextmavens whatsapp connect` from a developer's folder through the REAL platform service
on loopback: the log's lines (a stand-in `docker` program, as tests/integration/platform/test_logs.py uses) printed
as they stream, JSON lines with --json, --follow ended by SIGINT or SIGTERM (exit 130, no traceback, the reader on
the host stopped); pairing over the API against the Evolution STAND-IN the service is given."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nextmavens.cli import main
from nextmavens.projectlink import LINK_FILE
from nextmavens.whatsapp import connecting
from nextmavens.whatsapp.qr import qr_text
from tests.integration.platform.harness import PAIRED_NUMBER, PlatformStage, fake_docker, gone, running_service
from tests.support.standins import EvolutionStandIn


@pytest.fixture(scope="module")
def docker(platform_stage: PlatformStage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_docker(tmp_path_factory.mktemp("devlogs") / "bin") as folder:
        yield folder


@pytest.fixture
def linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform_stage: PlatformStage) -> dict[str, str]:
    """A folder linked to acme/shop, logged in as an admin of acme; the environment a subprocess needs."""
    env = {
        "NEXTMAVENS_URL": platform_stage.url,
        "NEXTMAVENS_TOKEN": platform_stage.issue("admin@acme.test")[1],
        "NEXTMAVENS_CONFIG_DIR": str(tmp_path / "config"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / LINK_FILE).parent.mkdir()
    (tmp_path / LINK_FILE).write_text("acme/shop\n")
    return env


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_logs_prints_the_lines_of_the_linked_projects_service(docker: Path, linked: dict[str, str]) -> None:
    done = run("logs", "--service", "auth", "--since", "10m")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[:5] == [f"2025-01-01T00:00:0{i}Z line {i}" for i in range(5)] and "an error on stderr" in lines
    argv = (docker / "argv").read_text().split("\n")[:-1]
    assert argv[0:2] == ["logs", "--timestamps"] and argv[2].startswith("--since=") and argv[3] == "nm-shop-auth-1"
    as_json = run("logs", "acme/shop", "--json")
    assert as_json.exit_code == 0, as_json.output
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert documents[0] == {"line": "2025-01-01T00:00:00Z line 0"}
    assert documents[-1] == {"end": {"reason": "eof", "exit_code": 0}}
    refused = run("logs", "--service", "storage")
    assert refused.exit_code == 1 and "has no storage service" in refused.stderr and not refused.stdout
    bad_since = run("logs", "--since", "yesterday")
    assert bad_since.exit_code == 1 and "since" in bad_since.stderr


@contextmanager
def following(env: dict[str, str], cwd: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`nextmavens logs --follow ARGS` as its own process with `env` (a developer's), killed if still running."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "nextmavens.cli", "logs", "--follow", *args],
        cwd=cwd,
        env={**inherited, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield follower
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def read_until(follower: subprocess.Popen[str], prefix: str, count: int) -> int:
    """Reads stdout until `count` lines started with `prefix`; how many did."""
    assert follower.stdout is not None
    seen = 0
    for line in follower.stdout:
        seen += line.startswith(prefix)
        if seen == count:
            break
    return seen


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_following_ends_cleanly_on_a_signal(
    docker: Path, linked: dict[str, str], tmp_path: Path, stop: signal.Signals
) -> None:
    with following(linked, tmp_path) as follower:
        ticks = read_until(follower, "tick", 3)
        reader = int((docker / "pid").read_text())
        assert not gone(reader, within=0.2)  # still following
        follower.send_signal(stop)
        _, stderr = follower.communicate(timeout=20)
    assert ticks == 3
    assert follower.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert gone(reader)  # the service stopped the host's reader when the client went away


def test_following_outlives_the_services_time_bound_for_one_stream(
    platform_stage: PlatformStage, docker: Path, linked: dict[str, str], tmp_path: Path
) -> None:
    (docker / "count").write_text("0")  # ticks only: lines without a time resume at the stream's start
    try:
        with (
            running_service(platform_stage.settings(logs_max_seconds=1.0)) as url,
            following({**linked, "NEXTMAVENS_URL": url}, tmp_path, "--since", "1h") as follower,
        ):
            starts = read_until(follower, "tick 0", 2)  # each stream's reader starts again at tick 0
            argv = (docker / "argv").read_text().split("\n")[:-1]
            follower.send_signal(signal.SIGINT)
            _, stderr = follower.communicate(timeout=20)
    finally:
        (docker / "count").unlink()
    assert starts == 2 and follower.returncode == 130, stderr
    # the second stream asked from the second the first one started, not from an hour ago
    since = datetime.strptime(argv[2].removeprefix("--since="), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert argv[3] == "--follow" and datetime.now(UTC) - since < timedelta(seconds=30), argv
    assert "time limit" not in stderr


def test_whatsapp_connect_pairs_through_the_api_with_the_terminal_qr_code(
    platform_stage: PlatformStage, linked: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connecting, "POLL_INTERVAL_S", 0.02)
    evolution = platform_stage.evolution
    assert isinstance(evolution, EvolutionStandIn)
    evolution.add_instance("shop--desk")
    evolution.api.open_after = 3  # {count: 0}, two QR codes, then the phone has scanned
    before = len(evolution.requests)
    done = run("whatsapp", "connect", "desk")
    assert done.exit_code == 0, done.output
    assert done.stdout.count("Scan with WhatsApp") == 2
    connects = [r for r in evolution.requests[before:] if r == ("GET", "/instance/connect/shop--desk")]
    assert connects  # Evolution was reached by the service, not by the CLI (it has no key)
    assert qr_text(_first_code("shop--desk")) in done.stdout
    assert "acme/shop desk is connected: +15550001234" in done.stdout
    assert "through the platform service" in done.stderr

    paired = run("whatsapp-connect", "acme/shop", "orders")  # open already: answers at once
    assert paired.exit_code == 0, paired.output
    assert f"is connected: +{PAIRED_NUMBER} (Acme Shop)" in paired.stdout and "Scan" not in paired.stdout

    missing = run("whatsapp", "connect", "nosuch")
    assert missing.exit_code == 1 and "acme/shop has no WhatsApp instance nosuch" in missing.stderr
    bad_number = run("whatsapp", "connect", "desk", "--number", "+49 151")
    assert bad_number.exit_code == 1 and "--number must be a phone number" in bad_number.stderr


def _first_code(name: str, count: int = 1) -> str:
    """The stand-in's count-th QR code for an instance (tests/support/standins.py `_connect`)."""
    return f"2@standin{count}{hashlib.sha256(f'{name}:{count}'.encode()).hexdigest()},{name},{count}"


def test_a_developer_cannot_pair_and_is_told_which_role_it_needs(
    platform_stage: PlatformStage, linked: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(platform_stage.evolution, EvolutionStandIn)
    platform_stage.evolution.add_instance("shop--front")  # not paired: pairing it is a write
    monkeypatch.setenv("NEXTMAVENS_TOKEN", platform_stage.issue("dev@acme.test")[1])
    refused = run("whatsapp", "connect", "front")
    message = " ".join(refused.stderr.split())
    assert refused.exit_code == 1, refused.output
    assert "admin role (or higher)" in message and "Traceback" not in refused.output
