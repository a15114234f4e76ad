"""What the service benchmarks share: `nextmavens platform serve` started as its own process (as the host runs
it) and stopped, CPU time from /proc, and the percentile they report."""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def start_service(
    dsn: str, master_key: Path, projects: Path, workdir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`nextmavens platform serve` on 127.0.0.1:`port`, answering /healthz; its log in `workdir`/service.log.
    `extra_env`: more of its NEXTMAVENS_* settings (the email benchmark's Resend stand-in)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "NEXTMAVENS_"))},
        "NEXTMAVENS_DSN": dsn,
        "NEXTMAVENS_MASTER_KEY": str(master_key),
        "NEXTMAVENS_PROJECTS": str(projects),
        "PYTHONPATH": str(REPO),
        **(extra_env or {}),
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


def run_client(script: str, port: int, options: dict[str, Any], stdin: str, timeout_s: float) -> dict[str, Any]:
    """The benchmark's own client, `script --client --port PORT --<option> <value>...`, as a second process: its
    one JSON line. What it must not show on a command line (a token, secrets) goes on `stdin`."""
    argv = [sys.executable, script, "--client", "--port", str(port)]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    client = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False)
    if client.returncode != 0:
        raise RuntimeError(f"the client failed: {client.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(client.stdout)
    return result


def load_line(when: str) -> str:
    return f"load average {when}: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def latency_line(sorted_ms: list[float]) -> str:
    return (
        f"latency ms: median {statistics.median(sorted_ms):.2f}, p90 {percentile(sorted_ms, 0.90):.2f}, "
        f"p99 {percentile(sorted_ms, 0.99):.2f}, max {sorted_ms[-1]:.2f}"
    )


def run_workers(worker: Callable[[], None], count: int, time_cap_s: float, stop: threading.Event) -> None:
    """`count` threads of `worker` until they end or `time_cap_s` passes; then `stop` is set (the workers look
    at it before each request) and the requests in flight may finish."""
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + time_cap_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(60)


def run_in_workdir(prefix: str, tmp: str | None, run: Callable[[Path], str]) -> int:
    """`run` in a new temporary folder, removed afterwards; its result printed as the last line."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))
    workdir.chmod(0o711)  # the server runs as `postgres` when we are root: it must pass through
    try:
        final_line = run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(final_line, flush=True)
    return 0


def load_client(
    host: str, port: int, path: str, headers: dict[str, str], args: Any, check: Callable[[int, bytes], str | None]
) -> dict[str, Any]:
    """GET `path` from `args.concurrency` keep-alive connections: `args.warmup` uncounted requests, then
    `args.requests` counted ones, within `args.time_cap_s`. `check` names what is wrong with an answer (None: it
    is right); the first wrong answer stops every worker. The latencies (ms) of the counted requests, the wall
    time from the first counted request, and the failures."""
    lock = threading.Lock()
    issued = {"warmup": 0, "counted": 0}
    latencies: list[float] = []
    failures: list[str] = []
    counting = threading.Event()
    stop = threading.Event()
    started_at: list[float] = []

    def take() -> bool | None:
        """True: a counted request; False: a warm-up one; None: stop."""
        with lock:
            if stop.is_set():
                return None
            if issued["warmup"] < args.warmup:
                issued["warmup"] += 1
                return False
            if issued["counted"] >= args.requests:
                return None
            issued["counted"] += 1
            return True

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            while (counted := take()) is not None:
                if counted and not counting.is_set():
                    with lock:
                        if not counting.is_set():
                            started_at.append(time.perf_counter())
                            counting.set()
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                elapsed_ms = (time.perf_counter() - t0) * 1000
                problem = check(response.status, body)
                if problem is not None:
                    with lock:
                        failures.append(problem)
                        stop.set()
                    return
                if counted:
                    with lock:
                        latencies.append(elapsed_ms)
        finally:
            conn.close()

    run_workers(worker, args.concurrency, args.time_cap_s, stop)
    wall_s = time.perf_counter() - started_at[0] if started_at else 0.0
    return {"latencies_ms": latencies, "wall_s": wall_s, "failures": failures}
