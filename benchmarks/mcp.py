"""Benchmark of `nextmavens mcp supabase`: server start to first tool result, and execute_sql round trips per second,
over stdio through the SDK's own client, as an AI tool runs it.

    python benchmarks/mcp.py [--starts 5] [--calls 1000] [--time-cap-s 20] [--mode auto|legacy] [--tmp DIR]

1. a throwaway PostgreSQL (loopback only, fsync off) with one project applied for real by the engine, and a token
   of a developer of its org (so the server is read-only: execute_sql as the project's read-only role);
2. `nextmavens platform serve` as its own process on a free loopback port;
3. `--starts` times: the MCP server started as a subprocess (`nextmavens mcp supabase --project ...`, through the
   entry point with this interpreter), the protocol handshake, and one `execute_sql("SELECT 1")`: the time from
   spawning to its result (median; bytecode cached, as an installed package has it);
4. one server, `execute_sql` called one after another (an AI client waits for each result), 20 warm-up calls,
   then `--calls` calls or `--time-cap-s` seconds: round trips per second, with latency percentiles; then, for
   comparison, the same request through the API client alone (no MCP), which shows what the MCP layer adds.

It also prints the CPU time each part used (the MCP server process per start and per call, the platform service per
call), since other work on the machine stretches the wall-clock figures. It prints how it measured (cores, load
average before and after), then exactly one last line:
`mcp_start_s=<x> sql_calls_per_s=<n>` (goals: <= 1.5 s, >= 100/s).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file's folder is first on the path when run as a script: its name would shadow the SDK's package `mcp`
# (and benchmarks/platform.py the standard library's `platform`). Look up modules from the repository instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.serving import (  # noqa: E402
    latency_line,
    load_line,
    run_in_workdir,
    start_service,
    stop_service,
)

ENTRY = "import sys; from nextmavens.entry import main; sys.argv[0] = 'nextmavens'; main()"


def say(text: str = "") -> None:
    print(text, flush=True)


def server_params(url: str, token: str, project: str, workdir: Path):  # type: ignore[no-untyped-def]
    from mcp.client.stdio import StdioServerParameters

    env = {
        "NEXTMAVENS_URL": url,
        "NEXTMAVENS_TOKEN": token,
        "NEXTMAVENS_CONFIG_DIR": str(workdir / "config"),
        "PYTHONPATH": str(REPO),
        "PATH": os.environ["PATH"],
    }
    return StdioServerParameters(
        command=sys.executable, args=["-c", ENTRY, "mcp", "supabase", "--project", project], env=env
    )


async def one_start(params: object, mode: str) -> float:
    from mcp import Client

    started = time.perf_counter()
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:  # type: ignore[arg-type]
        result = await client.call_tool("execute_sql", {"query": "SELECT 1 AS one"})
        elapsed = time.perf_counter() - started
        if result.is_error:
            raise RuntimeError(f"execute_sql failed: {result.content}")
    return elapsed


async def round_trips(params: object, mode: str, calls: int, cap_s: float) -> tuple[int, float, list[float]]:
    from mcp import Client

    latencies: list[float] = []
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:  # type: ignore[arg-type]
        for _ in range(20):
            await client.call_tool("execute_sql", {"query": "SELECT 1 AS one"})
        started = time.perf_counter()
        while len(latencies) < calls and time.perf_counter() - started < cap_s:
            t0 = time.perf_counter()
            result = await client.call_tool("execute_sql", {"query": "SELECT id, now() FROM (VALUES (1), (2)) v(id)"})
            latencies.append((time.perf_counter() - t0) * 1000)
            if result.is_error:
                raise RuntimeError(f"execute_sql failed: {result.content}")
        wall = time.perf_counter() - started
    return len(latencies), wall, latencies


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (each MCP server, once its client has closed it)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def process_cpu_s(pid: int) -> float:
    """CPU seconds a running process has used (/proc/PID/stat: utime and stime, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_alone(url: str, token: str, cap_s: float) -> tuple[int, float]:
    """The same POST .../sql through the API client the MCP server uses, without MCP: what MCP adds is the rest."""
    from nextmavens.remote.api import ApiClient, path_of

    client = ApiClient(url, token)
    path = path_of("v1", "projects", "org0", "p0000", "sql")
    body = {"query": "SELECT id, now() FROM (VALUES (1), (2)) v(id)"}
    count, started = 0, time.perf_counter()
    while count < 1000 and time.perf_counter() - started < cap_s:
        client.post(path, body)
        count += 1
    return count, time.perf_counter() - started


def run(args: argparse.Namespace, workdir: Path) -> str:
    import anyio

    from benchmarks.platform import applied_projects
    from devkit.localdb.server import LocalPostgres, free_port

    server = LocalPostgres(base=workdir / "server", fast=True)
    server.start()
    service = None
    try:
        projects, master_key, token = applied_projects(server.dsn, workdir, 1)
        port = free_port()
        service = start_service(server.dsn, master_key, projects, workdir, port)
        params = server_params(f"http://127.0.0.1:{port}", token, "org0/p0000", workdir)
        say(f"cores: {os.cpu_count()} (client, MCP server, platform service and PostgreSQL share them)")
        say(load_line("before"))
        anyio.run(one_start, params, args.mode)  # warm: bytecode written, as an installed package has it
        starts, start_cpu = [], []
        for _ in range(args.starts):
            before = children_cpu_s()
            starts.append(anyio.run(one_start, params, args.mode))
            start_cpu.append(children_cpu_s() - before)
        say("start to first execute_sql result, s: " + " ".join(f"{s:.3f}" for s in starts))
        say("  CPU of the MCP server process for it, s: " + " ".join(f"{s:.3f}" for s in start_cpu))
        before, service_before = children_cpu_s(), process_cpu_s(service.pid)
        count, wall, latencies = anyio.run(round_trips, params, args.mode, args.calls, args.time_cap_s)
        server_cpu = children_cpu_s() - before - statistics.median(start_cpu)
        service_cpu = process_cpu_s(service.pid) - service_before
        rate = count / wall
        say(f"execute_sql round trips: {count} in {wall:.2f} s, one at a time; {latency_line(sorted(latencies))}")
        say(
            f"  CPU per call: MCP server {1000 * server_cpu / (count + 20):.2f} ms, platform service "
            f"{1000 * service_cpu / (count + 20):.2f} ms (PostgreSQL and this client not counted)"
        )
        alone, alone_s = api_alone(f"http://127.0.0.1:{port}", token, args.time_cap_s / 2)
        say(f"for comparison, POST .../sql without MCP (the same client, in this process): {alone / alone_s:.0f}/s")
        say(load_line("after"))
    finally:
        stop_service(service)
        server.stop()
    return f"mcp_start_s={statistics.median(starts):.2f} sql_calls_per_s={rate:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--time-cap-s", type=float, default=20.0)
    parser.add_argument("--mode", choices=("auto", "legacy"), default="auto")
    parser.add_argument("--tmp", default=None, help="where the temporary folder goes")
    args = parser.parse_args()
    return run_in_workdir("nextmavens-mcp-bench-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
