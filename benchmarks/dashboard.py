"""Benchmark of the dashboard: the project list page of one org with 200 projects, under load from a second process.

    python benchmarks/dashboard.py [--projects 200] [--concurrency 8] [--requests 4000] [--warmup 200]
                                   [--time-cap-s 60] [--tmp DIR]

1. a throwaway PostgreSQL (loopback only, fsync off: nothing here measures the disk);
2. `--projects` manifests in ONE org whose org.yaml lists the benchmark's member as an admin (the page then
   renders every row's suspend form too), applied for real by the engine;
3. the member's password stored as an accepted invite would (argon2id), and `nextmavens platform serve` as its
   own process on a free loopback port, as the host runs it;
4. the driver signs in through the form (the pre-sign-in cookie, the form token, POST /signin) and hands the
   session cookie to a second process, the client: `--concurrency` threads, each with its own keep-alive
   HTTP/1.1 connection, first `--warmup` requests not counted, then `--requests` requests or `--time-cap-s`
   seconds, whichever ends first. Every answer must be 200 with a row for every project.

Each request checks the session (one query), reads the catalog (cached), the last good backups (one query) and
renders the page. Prints how it measured, then exactly one last line: `page_rps=<n> page_p99_ms=<x>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on the path, and its email.py and platform.py would shadow the
# standard library's modules (http.client imports email): drop the folder before anything else is imported.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
# This file's folder is first on the path when run as a script: its platform.py would shadow the standard
# library's `platform` module, which pydantic imports. Look up modules from the repository instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.serving import (  # noqa: E402
    latency_line,
    load_client,
    load_line,
    percentile,
    process_cpu_s,
    run_client,
    run_in_workdir,
    start_service,
    stop_service,
)

ORG = "bench"
MEMBER = "bench@example.test"
PASSWORD = "benchmark password, long enough"
PAGE = f"/orgs/{ORG}"
ROW = b"<tr>"


def say(text: str = "") -> None:
    print(text, flush=True)


def write_manifests(root: Path, count: int) -> None:
    import yaml

    folder = root / ORG
    folder.mkdir(parents=True, exist_ok=True)
    members = [{"email": MEMBER, "role": "admin"}, {"email": "owner@example.test", "role": "owner"}]
    (folder / "org.yaml").write_text(yaml.safe_dump({"name": "Bench", "members": members}))
    for i in range(count):
        ref = f"p{i:04d}"
        manifest = {"ref": ref, "name": f"Bench project {i}", "auth": {"site_url": f"https://{ref}.example"}}
        (folder / f"{ref}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


# -- the client (its own process) ---------------------------------------------------------------------------


def client_main(args: argparse.Namespace) -> int:
    """Load the page; print one JSON object: latencies (ms) of the counted requests, wall time, failures."""
    cookie = sys.stdin.readline().strip()  # not on the command line, where `ps` shows it
    headers = {"Cookie": cookie, "Accept": "text/html"}

    def check(status: int, body: bytes) -> str | None:
        rows = body.count(ROW) - 1  # the header row
        return None if status == 200 and rows == args.expect else f"{status}: {rows} rows"

    print(json.dumps(load_client(args.host, args.port, PAGE, headers, args, check)))
    return 0


# -- the driver ----------------------------------------------------------------------------------------------


def sign_in(port: int) -> str:
    """The session cookie (`nm_session=...`) of MEMBER, signed in through the form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/signin")
        form = conn.getresponse()
        html = form.read().decode()
        presign = form.getheader("set-cookie", "").split(";")[0]
        found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
        if not presign or found is None:
            raise RuntimeError("the sign-in page gave no form token")
        body = urlencode({"email": MEMBER, "password": PASSWORD, "csrf": found.group(1), "next": "/"})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": presign}
        conn.request("POST", "/signin", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        cookies = [value.split(";")[0] for key, value in answer.getheaders() if key.lower() == "set-cookie"]
        session = next((c for c in cookies if c.startswith("nm_session=")), None)
        if answer.status != 303 or session is None:
            raise RuntimeError(f"sign-in failed: {answer.status}")
        return session
    finally:
        conn.close()


def run(args: argparse.Namespace, workdir: Path) -> str:
    from devkit.localdb.server import LocalPostgres, free_port
    from nextmavens.control.db import connect_control
    from nextmavens.control.store import members
    from nextmavens.engine.session import Engine, EngineConfig
    from nextmavens.manifest.loader import load_manifests
    from nextmavens.platform.passwords import hash_password

    server = LocalPostgres(base=workdir / "server", fast=True)
    server.start()
    service: subprocess.Popen[bytes] | None = None
    try:
        projects = workdir / "projects"
        master_key = workdir / "keys" / "master.key"
        write_manifests(projects, args.projects)
        engine = Engine(EngineConfig(dsn=server.dsn, master_key_path=master_key, lock_timeout_s=60, actor="bench"))
        t0 = time.perf_counter()
        engine.apply(load_manifests(projects))
        say(f"applied {args.projects} projects in one org in {time.perf_counter() - t0:.1f} s")
        with connect_control(server.dsn) as conn:
            members.set_password(conn, MEMBER, hash_password(PASSWORD))
        port = free_port()
        service = start_service(server.dsn, master_key, projects, workdir, port)
        cookie = sign_in(port)

        say(f"cores: {os.cpu_count()} (client and server share them); {load_line('before')}")
        say(
            f"load: GET {PAGE} (HTML, {args.projects} rows) from a second process, {args.concurrency} threads with "
            f"one keep-alive connection each, {args.warmup} warm-up requests not counted, then {args.requests} "
            f"requests or {args.time_cap_s:.0f} s; session: member {MEMBER}, role admin"
        )
        cpu_before = process_cpu_s(service.pid)
        options = {"concurrency": args.concurrency, "requests": args.requests, "warmup": args.warmup}
        options |= {"time_cap_s": args.time_cap_s, "expect": args.projects}
        result = run_client(__file__, port, options, cookie + "\n", args.time_cap_s + 120)
        cpu_after = process_cpu_s(service.pid)
        if result["failures"]:
            raise RuntimeError(f"the service answered wrongly: {result['failures'][:3]}")
        latencies = sorted(result["latencies_ms"])
        if not latencies:
            raise RuntimeError("no request was counted (the time cap ended the warm-up?)")
        count = len(latencies)
        wall_s = result["wall_s"]
        capped = " (stopped by the time cap)" if count < args.requests else ""
        say(f"counted {count} requests in {wall_s:.2f} s{capped}")
        say(latency_line(latencies))
        say(
            f"server CPU per request (warm-up included): "
            f"{(cpu_after - cpu_before) * 1000 / (count + args.warmup):.2f} ms"
        )
        say(load_line("after"))
        return f"page_rps={count / wall_s:.0f} page_p99_ms={percentile(latencies, 0.99):.1f}"
    finally:
        stop_service(service)
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000, help="counted requests (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--time-cap-s", type=float, default=60.0)
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.projects < 1 or args.concurrency < 1 or args.requests < 1:
        parser.error("--projects, --concurrency and --requests must be at least 1")
    return run_in_workdir("nextmavens-bench-dashboard-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
