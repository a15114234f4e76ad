"""What the service benchmarks share: `nextmavens platform serve` started as its own process (as the host runs
it) and stopped, CPU time from /proc, and the percentile they report."""

from __future__ import annotations

import http.client
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"`nextmavens platform serve` exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the service did not answer /healthz within {START_TIMEOUT_S} s")


def start_service(dsn: str, master_key: Path, projects: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """`nextmavens platform serve` on 127.0.0.1:`port`, answering /healthz; its log in `workdir`/service.log."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "NEXTMAVENS_"))},
        "NEXTMAVENS_DSN": dsn,
        "NEXTMAVENS_MASTER_KEY": str(master_key),
        "NEXTMAVENS_PROJECTS": str(projects),
        "PYTHONPATH": str(REPO),
    }
    service = subprocess.Popen(
        [sys.executable, "-m", "nextmavens.cli", "platform", "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "service.log").open("wb"),
    )
    try:
        wait_until_serving(port, service)
    except BaseException:
        stop_service(service)
        raise
    return service


def stop_service(service: subprocess.Popen[bytes] | None) -> None:
    if service is not None and service.poll() is None:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
