"""The collector's process: `python -m nextmavens.metrics.collectd` (systemd unit nextmavens-metrics.service, through
the host's nextmavens-env wrapper). A process of its own rather than a thread of the platform service: it reads the
cgroup tree, the engine's socket and nginx's log as root, which the service's unprivileged user must not, and it
stays small (no web framework, no pydantic, no docker SDK): see `benchmarks/metrics.py` for its CPU and memory.

Settings (environment): NEXTMAVENS_METRICS_DSN (its own role's connection, nextmavens_metrics; the host's wrapper
sets it) or else NEXTMAVENS_DSN, NEXTMAVENS_API_DOMAIN, NEXTMAVENS_METRICS_LOG, NEXTMAVENS_METRICS_LISTEN,
NEXTMAVENS_METRICS_CGROUP_ROOT, NEXTMAVENS_METRICS_DOCKER_SOCKET, NEXTMAVENS_MONITOR_PATHS.
`--once` samples twice a few seconds apart (rates need two samples), writes the second, prints it as JSON and exits.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from nextmavens.control.db import connect_control
from nextmavens.metrics.accesslog import LogFollower
from nextmavens.metrics.cgroups import DEFAULT_ROOT, CgroupReader
from nextmavens.metrics.collector import Collector, Sources
from nextmavens.metrics.dockerapi import DEFAULT_SOCKET, DockerApi
from nextmavens.metrics.erroralerts import ErrorAlerts

DEFAULT_LOG = "/var/log/nginx/nextmavens-metrics.log"


def sources_from_env(env: Mapping[str, str], from_start: bool = False) -> Sources:
    dsn = env.get("NEXTMAVENS_METRICS_DSN") or env.get("NEXTMAVENS_DSN")
    if not dsn:
        raise SystemExit("NEXTMAVENS_METRICS_DSN is not set (the host's nextmavens-env wrapper sets it)")
    socket_path = env.get("NEXTMAVENS_METRICS_DOCKER_SOCKET", DEFAULT_SOCKET)
    log_path = env.get("NEXTMAVENS_METRICS_LOG", DEFAULT_LOG)
    disks = tuple(p.strip() for p in env.get("NEXTMAVENS_MONITOR_PATHS", "/").split(",") if p.strip())
    return Sources(
        connect=lambda: connect_control(dsn),
        docker=DockerApi(socket_path) if socket_path else None,
        cgroups=CgroupReader(Path(env.get("NEXTMAVENS_METRICS_CGROUP_ROOT") or DEFAULT_ROOT)),
        access_log=LogFollower(Path(log_path), from_start=from_start) if log_path else None,
        api_domain=env.get("NEXTMAVENS_API_DOMAIN", "").strip().strip("."),
        disks=disks or ("/",),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nextmavens-metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="sample, write and print one minute, then exit")
    parser.add_argument("--interval", type=float, default=3.0, help="--once: seconds between the two samples")
    args = parser.parse_args(argv)
    collector = Collector(sources_from_env(os.environ, from_start=args.once))
    collector.on_minute.append(ErrorAlerts(collector).on_minute)
    if args.once:
        minute = int(time.time() // 60 * 60)
        collector.tick(minute - 60)  # primes the rates; this minute's row is the next
        time.sleep(args.interval)
        samples = collector.tick(minute)
        print(json.dumps({"minute": minute, "samples": samples}, indent=2, sort_keys=True))
        return 0
    gc.freeze()  # what start-up made lives as long as the process: the collector's GC passes skip it
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = None
    listen = os.environ.get("NEXTMAVENS_METRICS_LISTEN", "").strip()
    if listen:
        from nextmavens.metrics.prometheus import render, serve

        def current() -> str:
            with collector.lock:
                return render(collector.latest, None)

        server = serve(listen, current)
    print("metrics collector started", file=sys.stderr, flush=True)
    try:
        collector.run(stop)
    finally:
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
