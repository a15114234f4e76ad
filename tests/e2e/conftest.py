"""Fixtures for the end-to-end tests: one booted sandbox per session, torn down at the end.

`NEXTMAVENS_E2E_REUSE_SANDBOX=1` reuses a sandbox that is already running and leaves it running afterwards
(for iterating on a deploy); by default the session starts a fresh guest and stops it at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.repo import REPO

CLI = [sys.executable, "-m", "devkit.sandbox.cli"]


def _cli(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def _parse_exports(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


class Sandbox:
    def __init__(self, env: dict[str, str], up_seconds: float) -> None:
        self.env = env
        self.up_seconds = up_seconds
        self.host = env["NEXTMAVENS_SANDBOX_HOST"]
        self.port = int(env["NEXTMAVENS_SANDBOX_PORT"])
        self.key = env["NEXTMAVENS_SANDBOX_KEY"]
        self.known_hosts = env["NEXTMAVENS_SANDBOX_KNOWN_HOSTS"]
        self.proxy = env["NEXTMAVENS_SANDBOX_PROXY"]

    def ssh_argv(self, user: str = "root") -> list[str]:
        return [
            "ssh", "-i", self.key, "-p", str(self.port), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-T",
            f"{user}@{self.host}",
        ]  # fmt: skip

    def run(self, command: str, *, user: str = "root", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.ssh_argv(user), "--", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check(self, command: str, **kw) -> str:
        proc = self.run(command, **kw)
        assert proc.returncode == 0, f"guest command failed ({proc.returncode}): {command}\n{proc.stdout}{proc.stderr}"
        return proc.stdout

    def ssh_config(self, path: Path, user: str = "root") -> Path:
        path.write_text(
            f"Host sandbox\n  HostName {self.host}\n  Port {self.port}\n  User {user}\n"
            f"  IdentityFile {self.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
        )
        return path


# Which sandbox the session drives (its name, /30, state directory, proxy port) is the harness's choice, not
# operator config: keep it for every test, so parallel sandboxes on one machine never collide. The root
# conftest drops every other NEXTMAVENS_* variable.
_SELECTION = {
    k: v
    for k, v in os.environ.items()
    if k
    in (
        "NEXTMAVENS_SANDBOX_NAME",
        "NEXTMAVENS_SANDBOX_SUBNET",
        "NEXTMAVENS_SANDBOX_STATE_DIR",
        "NEXTMAVENS_SANDBOX_PROXY_PORT",
    )
}


@pytest.fixture(autouse=True)
def _sandbox_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _SELECTION.items():
        monkeypatch.setenv(key, value)


_UP_FAILURE: list[str] = []  # a failed `up` fails every later test at once instead of retrying it


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    if _UP_FAILURE:
        pytest.fail(_UP_FAILURE[0], pytrace=False)
    reuse = os.environ.get("NEXTMAVENS_E2E_REUSE_SANDBOX") == "1"
    if not reuse:
        down = _cli("down", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr
    t0 = time.monotonic()
    up = _cli("up")
    elapsed = time.monotonic() - t0
    sys.stderr.write(up.stderr)
    if up.returncode != 0:
        _UP_FAILURE.append(f"sandbox up failed:\n{up.stdout}{up.stderr}")
        pytest.fail(_UP_FAILURE[0], pytrace=False)
    env = _parse_exports(up.stdout)
    for key in ("NEXTMAVENS_SANDBOX_HOST", "NEXTMAVENS_SANDBOX_PORT", "NEXTMAVENS_SANDBOX_KEY"):
        assert env.get(key), f"sandbox up did not print {key}:\n{up.stdout}"
    box = Sandbox(env, elapsed)
    state = json.loads(_cli("status", "--json").stdout)
    yield box
    if not reuse:
        down = _cli("down", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr
        # nothing of it is left: processes, namespace, host end of the veth
        after = _cli("status", "--json")
        assert after.returncode == 3 and not json.loads(after.stdout)["running"], after.stdout
        for pid in (state["nspawn_pid"], state["proxy_pid"]):
            assert not Path(f"/proc/{pid}/exe").exists() or _exe(pid) not in ("systemd-nspawn", "tinyproxy")
        netns = Path("/run/netns") / state["netns"]
        assert not netns.exists(), f"{netns} left behind"
        assert not any(p.name.startswith(state["netns"]) for p in Path("/sys/class/net").iterdir())


def _exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


# The upgrade is proven on the fresh guest: test_sandbox.py's first converge is the previous release's, and every
# module that converges this tree (email, the metrics unit, the apps) runs after it, whatever their names sort as.
# (A conftest's hook sees the whole session's items: only this folder's module is moved.)
FIRST_MODULE = Path(__file__).with_name("test_sandbox.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path != FIRST_MODULE)  # stable: every other order is kept
