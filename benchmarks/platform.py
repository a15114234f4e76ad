"""Benchmark of the platform service: `GET /v1/projects` with 200 projects, under load from a second process.

    python benchmarks/platform.py [--projects 200] [--concurrency 8] [--requests 6000] [--warmup 300]
                                  [--time-cap-s 60] [--tmp DIR]

1. a throwaway PostgreSQL (initdb + pg_ctl, loopback only, fsync off: nothing here measures the disk);
2. `--projects` manifests in a temporary folder (10 orgs, each org.yaml listing the benchmark's member as a
   developer), applied for real by the engine;
3. one access token issued for that member (role developer in every org, unscoped: it sees all the projects,
   the largest answer and the visibility filter run on every project);
4. `nextmavens platform serve` as its own process on a free loopback port, as the host runs it;
5. a second process, the client: `--concurrency` threads, each with its own keep-alive HTTP/1.1 connection
   (the standard library's http.client: a light client, so the client's CPU takes as little as possible of
   the two cores from the server), first `--warmup` requests not counted, then `--requests` requests or
   `--time-cap-s` seconds, whichever ends first. Every answer must be 200 with all the projects.

It prints how it measured (cores, load average before and after, concurrency, requests, token role) and the
server's CPU time per request, then exactly one last line: `rps=<n> p99_ms=<x>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file's folder is first on the path when run as a script: its name would shadow the standard library's
# `platform` module, which pydantic and others import. Look up modules from the repository instead.
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

ORGS = 10
MEMBER = "bench@example.test"


def say(text: str = "") -> None:
    print(text, flush=True)


def write_manifests(root: Path, count: int) -> None:
    import yaml

    for org in range(ORGS):
        folder = root / f"org{org}"
        folder.mkdir(parents=True, exist_ok=True)
        members = [{"email": MEMBER, "role": "developer"}, {"email": f"owner{org}@example.test", "role": "owner"}]
        (folder / "org.yaml").write_text(yaml.safe_dump({"name": f"Org {org}", "members": members}))
    for i in range(count):
        ref = f"p{i:04d}"
        manifest = {"ref": ref, "name": f"Bench project {i}", "auth": {"site_url": f"https://{ref}.example"}}
        (root / f"org{i % ORGS}" / f"{ref}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


# -- the client (its own process) ---------------------------------------------------------------------------


def client_main(args: argparse.Namespace) -> int:
    """Load the service; print one JSON object: latencies (ms) of the counted requests, wall time, failures."""
    token = sys.stdin.readline().strip()  # not on the command line, where `ps` shows it
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def check(status: int, body: bytes) -> str | None:
        return None if status == 200 and body.count(b'"ref"') == args.expect else f"{status}: {body[:200]!r}"

    print(json.dumps(load_client(args.host, args.port, "/v1/projects", headers, args, check)))
    return 0


# -- the driver ----------------------------------------------------------------------------------------------


def applied_projects(dsn: str, workdir: Path, count: int, read_only: bool = False) -> tuple[Path, Path, str]:
    """`count` generated projects applied for real on the server at `dsn`, and a token of MEMBER (developer in
    every org, unscoped): (projects folder, master key, token)."""
    from nextmavens.control.db import connect_control
    from nextmavens.engine.session import Engine, EngineConfig
    from nextmavens.manifest.loader import load_manifests
    from nextmavens.platform.issuing import issue_token

    projects = workdir / "projects"
    master_key = workdir / "keys" / "master.key"
    write_manifests(projects, count)
    engine = Engine(EngineConfig(dsn=dsn, master_key_path=master_key, lock_timeout_s=60, actor="bench"))
    t0 = time.perf_counter()
    engine.apply(load_manifests(projects))
    say(f"applied {count} projects in {ORGS} orgs in {time.perf_counter() - t0:.1f} s")
    with connect_control(dsn) as conn:
        token = issue_token(
            conn,
            member=MEMBER,
            org=None,
            project=None,
            read_only=read_only,
            name="benchmark",
            expires_at=datetime.now(UTC) + timedelta(hours=2),
            created_by="bench",
        ).token
    return projects, master_key, token


def run(args: argparse.Namespace, workdir: Path) -> str:
    from devkit.localdb.server import LocalPostgres, free_port

    server = LocalPostgres(base=workdir / "server", fast=True)
    server.start()
    service: subprocess.Popen[bytes] | None = None
    try:
        projects, master_key, token = applied_projects(server.dsn, workdir, args.projects)
        port = free_port()
        service = start_service(server.dsn, master_key, projects, workdir, port)

        say(f"cores: {os.cpu_count()} (client and server share them); {load_line('before')}")
        say(
            f"load: GET /v1/projects from a second process, {args.concurrency} threads with one keep-alive "
            f"connection each, {args.warmup} warm-up requests not counted, then {args.requests} requests "
            f"or {args.time_cap_s:.0f} s; token: member {MEMBER}, role developer in all {ORGS} orgs, unscoped, "
            f"sees all {args.projects} projects"
        )
        cpu_before = process_cpu_s(service.pid)
        options = {"concurrency": args.concurrency, "requests": args.requests, "warmup": args.warmup}
        options |= {"time_cap_s": args.time_cap_s, "expect": args.projects}
        result = run_client(__file__, port, options, token + "\n", args.time_cap_s + 120)
        cpu_after = process_cpu_s(service.pid)
        if result["failures"]:
            raise RuntimeError(f"the service answered wrongly: {result['failures'][:3]}")
        latencies = sorted(result["latencies_ms"])
        if not latencies:
            raise RuntimeError("no request was counted (the time cap ended the warm-up?)")
        count = len(latencies)
        wall_s = result["wall_s"]
        rps = count / wall_s
        p99 = percentile(latencies, 0.99)
        say(
            f"counted {count} requests in {wall_s:.2f} s"
            + (" (stopped by the time cap)" if count < args.requests else "")
        )
        say(latency_line(latencies))
        say(
            f"server CPU per request (warm-up included): "
            f"{(cpu_after - cpu_before) * 1000 / (count + args.warmup):.2f} ms"
        )
        say(load_line("after"))
        return f"rps={rps:.0f} p99_ms={p99:.1f}"
    finally:
        stop_service(service)
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=6000, help="counted requests (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=300)
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
    return run_in_workdir("nextmavens-bench-platform-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
