"""A load loop in a process of its own: GET one URL as one Host again and again until told to stop (a file appears),
bounded in count and time, then print one JSON line: {"ok": n, "failed": n, "statuses": {...}, "errors": [...]}.

    python -m tests.support.loadloop PORT HOST PATH STOPFILE [MAX_SECONDS] [MAX_REQUESTS] [ADDRESS]

Every answer but a 2xx counts as failed, and so does every connection error or timeout. Used by the switch tests and
benchmarks/deploy.py: the second process is what a user's browser is to the host.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def run(
    port: int, host: str, path: str, stop: Path, max_s: float, max_requests: int, address: str = "127.0.0.1"
) -> dict:
    ok = failed = 0
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline and ok + failed < max_requests and not stop.exists():
        conn = http.client.HTTPConnection(address, port, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            response.read()
            statuses[str(response.status)] += 1
            if 200 <= response.status < 300:
                ok += 1
            else:
                failed += 1
        except (OSError, http.client.HTTPException) as exc:
            failed += 1
            if len(errors) < 20:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
    return {"ok": ok, "failed": failed, "statuses": dict(statuses), "errors": errors}


def start(
    port: int,
    host: str,
    path: str,
    stop: Path,
    max_s: float = 120,
    max_requests: int = 200_000,
    address: str = "127.0.0.1",
) -> subprocess.Popen[str]:
    """The loop in a new process; read its line with `finish`."""
    argv = [sys.executable, "-m", "tests.support.loadloop", str(port), host, path, str(stop), str(max_s)]
    argv += [str(max_requests), address]
    root = Path(__file__).resolve().parents[2]
    environ = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=root, env=environ)


def finish(process: subprocess.Popen[str], stop: Path, timeout: float = 30) -> dict:
    stop.touch()
    out, _ = process.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    port, host, path, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    max_s = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    max_requests = int(sys.argv[6]) if len(sys.argv) > 6 else 200_000
    address = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
    print(json.dumps(run(port, host, path, stop, max_s, max_requests, address)), flush=True)


if __name__ == "__main__":
    main()
