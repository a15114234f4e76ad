"""The metrics collector's cost and a year's disk (issue 18).

1. `python -m nextmavens.metrics.collectd` (the unit's process) runs as its own process and collects 50 projects
   every minute for --minutes minutes (default 10, real minutes: the interval is not shortened) after one
   warm-up minute that is not counted. Its sources are GENERATED in the real formats, since this machine has no
   Docker engine and the sandbox holds a few projects, not 50:
   - cgroup v2 files (`system.slice/docker-<id>.scope/cpu.stat`, `memory.current`) for 2 containers a project
     (rest, auth) and 8 shared ones, their counters advanced every 10 s;
   - a stand-in of the Docker Engine API's `GET /containers/json` on a unix socket (the same JSON shape, compose
     labels);
   - nginx's structured access log (`nm_metrics`, the edge's format) appended --rps lines a second across the
     projects (default 20: 1200 requests a minute), 3 % of them 5xx;
   - a real PostgreSQL with the control database and 50 real project databases (their size, connections and
     transactions read from its statistics views).
   The collector runs as its unit runs it (PSYCOPG_IMPL=python: psycopg through the system's libpq). Its CPU
   (utime + stime from /proc/<pid>/stat) over the counted minutes is divided by their wall time: the average share
   of one core. Its resident memory (VmRSS) is sampled every 5 s: the largest is reported.
2. A year of downsampled metrics for the same series (the ones the collector created for 50 projects): hourly rows
   for 366 days, 5-minute rows for 30 days, raw minutes for 48 h, generated in SQL into the control database's real
   tables; their disk (tables, indexes, TOAST) after VACUUM is year_mb.

Last line: `collect_cpu_pct=<x> collect_rss_mb=<n> year_mb=<n>` (goals <= 0.1, <= 40, <= 500).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on the path, and its email.py and platform.py would shadow the
# standard library's modules (http.client imports email): drop the folder before anything else is imported.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import random
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devkit.localdb.server import LocalPostgres  # noqa: E402
from nextmavens.control.db import connect_cluster, connect_control  # noqa: E402
from nextmavens.control.store import metrics as store  # noqa: E402
from nextmavens.control.store.projects import add_project_if_missing  # noqa: E402
from nextmavens.naming import project_names  # noqa: E402

API_DOMAIN = "api.bench.test"
SHARED = ("postgres", "kong", "realtime", "supavisor", "studio", "meta", "evolution", "redis")


def containers(projects: int) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for i in range(projects):
        for service in ("rest", "auth"):
            found.append(
                {
                    "Id": f"{i:04d}{service:>4}".replace(" ", "0").ljust(64, "a"),
                    "Names": [f"/nm-p{i:02d}-{service}-1"],
                    "Labels": {"com.docker.compose.project": f"nm-p{i:02d}", "com.docker.compose.service": service},
                }
            )
    for name in SHARED:
        found.append({"Id": name.ljust(64, "b"), "Names": [f"/nextmavens-{name}"], "Labels": {}})
    return found


class EngineStandIn(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve_engine(path: Path, listing: list[dict[str, object]]) -> EngineStandIn:
    body = json.dumps(listing).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status = 200 if self.path.startswith("/containers/json") else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

        def address_string(self) -> str:
            return "engine"

        def log_message(self, *args: object) -> None:
            return

    server = EngineStandIn(str(path), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def replace(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.rename(path)


def advance_cgroups(root: Path, listing: list[dict[str, object]], stop: threading.Event) -> None:
    usage = dict.fromkeys((str(c["Id"]) for c in listing), 0)
    while True:
        for container_id in usage:
            usage[container_id] += random.randint(10_000, 2_000_000)  # noqa: S311
            folder = root / "system.slice" / f"docker-{container_id}.scope"
            folder.mkdir(parents=True, exist_ok=True)
            # replaced whole, as the kernel's files read: never a half-written file
            replace(
                folder / "cpu.stat",
                f"usage_usec {usage[container_id]}\nuser_usec 0\nsystem_usec 0\nnr_periods 0\n"
                "nr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
            )
            replace(folder / "memory.current", f"{random.randint(20, 200) * 2**20}\n")  # noqa: S311
        if stop.wait(10):
            return


def write_log(path: Path, projects: int, rps: int, stop: threading.Event) -> None:
    paths = ("/rest/v1/items", "/rest/v1/orders", "/auth/v1/token", "/rest/v1/rpc/search", "/storage/v1/object/x")
    with open(path, "ab", buffering=0) as log:
        while not stop.wait(1.0):
            now = time.time()
            lines = []
            for _ in range(rps):
                status = 503 if random.random() < 0.03 else random.choice((200, 200, 200, 201, 204, 401, 404))  # noqa: S311
                lines.append(
                    json.dumps(
                        {
                            "t": round(now, 3),
                            "h": f"p{random.randrange(projects):02d}.{API_DOMAIN}",  # noqa: S311
                            "p": "",
                            "m": "GET",
                            "u": random.choice(paths),  # noqa: S311
                            "s": status,
                            "rt": round(random.expovariate(1 / 0.04), 3),
                        },
                        separators=(",", ":"),
                    )
                )
            log.write(("\n".join(lines) + "\n").encode())


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure_collector(server: LocalPostgres, work: Path, projects: int, minutes: int, rps: int) -> tuple[float, float]:
    with connect_control(server.dsn) as control:
        for i in range(projects):
            add_project_if_missing(control, f"p{i:02d}", "bench", f"P{i:02d}", "active")
    with connect_cluster(server.dsn) as cluster:
        for i in range(projects):
            cluster.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(project_names(f"p{i:02d}").database)))
    listing = containers(projects)
    engine = serve_engine(work / "docker.sock", listing)
    stop = threading.Event()
    log = work / "nextmavens-metrics.log"
    log.touch()
    threads = [
        threading.Thread(target=advance_cgroups, args=(work / "cgroup", listing, stop), daemon=True),
        threading.Thread(target=write_log, args=(log, projects, rps, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")},
        "NEXTMAVENS_DSN": server.dsn,
        "NEXTMAVENS_API_DOMAIN": API_DOMAIN,
        "NEXTMAVENS_METRICS_LOG": str(log),
        "NEXTMAVENS_METRICS_CGROUP_ROOT": str(work / "cgroup"),
        "NEXTMAVENS_METRICS_DOCKER_SOCKET": str(work / "docker.sock"),
        "NEXTMAVENS_MONITOR_PATHS": "/",
        "PSYCOPG_IMPL": "python",  # as nextmavens-metrics.service runs it: the system's libpq, not the wheel's copy
    }
    process = subprocess.Popen([sys.executable, "-m", "nextmavens.metrics.collectd"], env=env, cwd=str(ROOT))  # noqa: S603
    hz = os.sysconf("SC_CLK_TCK")
    try:
        # warm-up: start-up, imports and the first (uncounted) tick; counting starts 5 s after a minute boundary
        now = time.time()
        first = (now // 60 + 2) * 60 + 5
        time.sleep(first - now)
        start_ticks, start_wall = cpu_ticks(process.pid), time.monotonic()
        rss = [rss_kb(process.pid)]
        end = first + minutes * 60
        while time.time() < end:
            time.sleep(min(5.0, max(0.0, end - time.time())))
            rss.append(rss_kb(process.pid))
            if process.poll() is not None:
                raise SystemExit(f"the collector ended early ({process.returncode})")
        used = (cpu_ticks(process.pid) - start_ticks) / hz
        wall = time.monotonic() - start_wall
    finally:
        process.terminate()
        process.wait(timeout=30)
        stop.set()
        engine.shutdown()
    with connect_control(server.dsn) as control:
        (rows,) = control.execute("SELECT count(*) FROM metric_raw").fetchone()  # type: ignore[misc]
        (series,) = control.execute("SELECT count(*) FROM metric_series").fetchone()  # type: ignore[misc]
    cpu_pct = 100.0 * used / wall
    print(
        f"collector: {used:.2f} s CPU over {wall:.0f} s ({cpu_pct:.4f} % of one core), RSS max {max(rss) / 1024:.1f} MB"
        f" (median {sorted(rss)[len(rss) // 2] / 1024:.1f} MB); {rows} raw rows, {series} series; {rps} requests/s"
    )
    return cpu_pct, max(rss) / 1024


def year_of_data(server: LocalPostgres, now: int) -> float:
    """A year of rows for every series the collector created, then the tables' disk."""
    day, hour = 86400, 3600
    with connect_control(server.dsn) as control:
        control.execute("TRUNCATE metric_raw, metric_5m, metric_1h, metric_rollups")
        today = now - now % day
        this_hour = now - now % hour
        control.execute(
            "INSERT INTO metric_1h (series, day, avg, max)"
            " SELECT s.id, d, (SELECT array_agg(random()::real * 100) FROM generate_series(1, 24)),"
            " (SELECT array_agg(random()::real * 100) FROM generate_series(1, 24))"
            " FROM metric_series s, generate_series(%s::int, %s::int, %s) AS d",
            (today - 366 * day, today - day, day),
        )
        control.execute(
            "INSERT INTO metric_5m (series, hour, avg, max)"
            " SELECT s.id, h, (SELECT array_agg(random()::real * 100) FROM generate_series(1, 12)),"
            " (SELECT array_agg(random()::real * 100) FROM generate_series(1, 12))"
            " FROM metric_series s, generate_series(%s::int, %s::int, %s) AS h",
            (this_hour - 30 * day, this_hour - hour, hour),
        )
        control.execute(
            "INSERT INTO metric_raw (scope, ts, series, vals)"
            " SELECT s.scope, m, array_agg(s.id ORDER BY s.id), array_agg(random()::real * 100 ORDER BY s.id)"
            " FROM metric_series s, generate_series(%s::int, %s::int, 60) AS m GROUP BY s.scope, m",
            (now - now % 60 - 48 * hour, now - now % 60),
        )
        control.execute("INSERT INTO metric_rollups VALUES ('5m', %s), ('1h', %s)", (this_hour, today))
        control.execute("VACUUM ANALYZE metric_raw, metric_5m, metric_1h")
        sizes = store.table_bytes(control)
        counts = {
            table: control.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # noqa: S608
            for table in ("metric_raw", "metric_5m", "metric_1h")
        }
        (series,) = control.execute("SELECT count(*) FROM metric_series").fetchone()  # type: ignore[misc]
    total = sum(sizes.values()) / 2**20
    print(
        f"a year for {series} series: "
        + ", ".join(f"{name} {size / 2**20:.1f} MB" for name, size in sorted(sizes.items()))
        + f"; rows {counts}; total {total:.1f} MB"
    )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rps", type=int, default=20, help="generated requests a second, all projects together")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="metrics-bench-"))
    work.chmod(0o755)  # the server runs as the postgres user
    server = LocalPostgres(work / "pg", fast=True)
    server.start()
    try:
        cpu_pct, rss_mb = measure_collector(server, work, args.projects, args.minutes, args.rps)
        year_mb = year_of_data(server, int(time.time()))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"collect_cpu_pct={cpu_pct:.4f} collect_rss_mb={rss_mb:.1f} year_mb={year_mb:.0f}")


if __name__ == "__main__":
    main()
