"""Benchmark of the developer CLI: `nextmavens projects --json` as a whole process against a running platform
service with 200 projects.

    python benchmarks/cli.py [--projects 200] [--runs 10] [--port 25410] [--tmp DIR]

1. a throwaway PostgreSQL (loopback only, fsync off) and `--projects` generated manifests in 10 orgs, applied
   for real by the engine (as benchmarks/platform.py does);
2. one access token for a member who is a developer in every org (unscoped: the answer lists every project);
3. `nextmavens platform serve` as its own process on 127.0.0.1:`--port`;
4. the `nextmavens` executable installed beside this Python (the console script a laptop runs), with
   NEXTMAVENS_URL and NEXTMAVENS_TOKEN in its environment: one warm-up run (bytecode written), then `--runs`
   runs, each timed from spawn to exit, each checked to print JSON listing every project.

5. the same for `nextmavens db migrations org0/p0000 --json` in a folder with one local migration (a shared
   command: the developer commands' fast start when it goes through the API), and once more with NEXTMAVENS_DSN
   set, which sends the same command through the whole command line (the engine's imports) as it went before.

It prints each run's time, the import time of the command's start-up path (`python -X importtime`, the largest
modules), `db_migrations_cmd_s=<median>` and `db_migrations_whole_cli_s=<median>`, and exactly one last line:
`projects_cmd_s=<median seconds>`. Goal: <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This folder holds platform.py, which would shadow the standard library's `platform` module when this file is
# run as a script: look up modules from the repository instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.platform import MEMBER, ORGS, applied_projects  # noqa: E402
from benchmarks.serving import load_line, run_in_workdir, start_service, stop_service  # noqa: E402


def say(text: str = "") -> None:
    print(text, flush=True)


def cli_environment(url: str, token: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "NEXTMAVENS_"))}
    return env | {
        "NEXTMAVENS_URL": url,
        "NEXTMAVENS_TOKEN": token,
        "NEXTMAVENS_CONFIG_DIR": str(workdir / "config"),  # no stored login of the user's is read
    }


def timed_run(executable: Path, env: dict[str, str], expect: int) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(executable), "projects", "--json"], env=env, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"`nextmavens projects --json` exited {done.returncode}: {done.stderr[-1000:]!r}")
    listed = len(json.loads(done.stdout)["projects"])
    if listed != expect:
        raise RuntimeError(f"`nextmavens projects --json` listed {listed} projects, not {expect}")
    return elapsed


DB_PROJECT = "org0/p0000"  # benchmarks/platform.py's first generated project


CPU_S: dict[str, list[float]] = {}  # label -> the CPU seconds (user + system) each run's process used


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_migrations(executable: Path, env: dict[str, str], folder: Path, label: str = "") -> float:
    """Wall seconds of one run; its CPU seconds go to CPU_S[label] (a figure a loaded machine inflates less)."""
    started, cpu = time.perf_counter(), children_cpu()
    argv = [str(executable), "db", "migrations", DB_PROJECT, "--json"]
    done = subprocess.run(argv, env=env, cwd=folder, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - started
    CPU_S.setdefault(label, []).append(children_cpu() - cpu)
    if done.returncode != 0:
        raise RuntimeError(f"`nextmavens db migrations --json` exited {done.returncode}: {done.stderr[-1000:]!r}")
    answer = json.loads(done.stdout)
    if answer["project"] != DB_PROJECT or [m["version"] for m in answer["pending"]] != ["20250101000000"]:
        raise RuntimeError(f"`nextmavens db migrations --json` answered {answer!r}")
    return elapsed


def median_of(label: str, runs: list[float]) -> float:
    say(f"{label} runs (s): " + " ".join(f"{t:.3f}" for t in runs))
    say(f"{label} CPU per run (s): median {statistics.median(CPU_S[label]):.3f}")
    return statistics.median(runs)


def import_profile(env: dict[str, str], top: int = 8) -> list[str]:
    """The largest cumulative imports of the command's start-up path (the entry and the developer commands)."""
    probe = "import nextmavens.entry, nextmavens.remote.commands"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], env=env, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return [f"{micros / 1000:7.1f} ms {name}" for micros, name in sorted(rows, reverse=True)[:top]]


def run(args: argparse.Namespace, workdir: Path) -> str:
    from devkit.localdb.server import LocalPostgres

    executable = Path(sys.executable).parent / "nextmavens"
    if not executable.exists():
        raise RuntimeError(f"no `nextmavens` beside {sys.executable}: install the checkout (pip install -e .)")
    server = LocalPostgres(base=workdir / "server", fast=True)
    server.start()
    service = None
    try:
        projects, master_key, token = applied_projects(server.dsn, workdir, args.projects, read_only=True)
        service = start_service(server.dsn, master_key, projects, workdir, args.port)
        env = cli_environment(f"http://127.0.0.1:{args.port}", token, workdir)

        say(f"cores: {os.cpu_count()}; {load_line('before')}")
        say(f"command: {executable} projects --json (token: {MEMBER}, developer in all {ORGS} orgs, read-only)")
        timed_run(executable, env, args.projects)  # warm-up: bytecode written, the service's first answer
        times = [timed_run(executable, env, args.projects) for _ in range(args.runs)]
        say("runs (s): " + " ".join(f"{t:.3f}" for t in times))
        say(f"min {min(times):.3f} s, median {statistics.median(times):.3f} s, max {max(times):.3f} s")
        say("largest imports on the start-up path (cumulative):")
        for line in import_profile(env):
            say(f"  {line}")

        folder = workdir / "app"
        (folder / "supabase" / "migrations").mkdir(parents=True)
        (folder / "supabase" / "migrations" / "20250101000000_first.sql").write_text("create table t (id int);\n")
        whole_env = env | {"NEXTMAVENS_DSN": server.dsn}  # the host's side: the whole command line, same API call
        timed_migrations(executable, env, folder)  # warm-up
        fast_label, whole_label = "db migrations", "db migrations (NEXTMAVENS_DSN set: whole CLI)"
        fast = median_of(fast_label, [timed_migrations(executable, env, folder, fast_label) for _ in range(args.runs)])
        whole = median_of(
            whole_label, [timed_migrations(executable, whole_env, folder, whole_label) for _ in range(args.runs)]
        )
        say(load_line("after"))
        say(f"db_migrations_cmd_s={fast:.3f}")
        say(f"db_migrations_whole_cli_s={whole:.3f}")
        return f"projects_cmd_s={statistics.median(times):.3f}"
    finally:
        stop_service(service)
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--port", type=int, default=25410, help="the service's loopback port")
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    args = parser.parse_args()
    if args.projects < 1 or args.runs < 1:
        parser.error("--projects and --runs must be at least 1")
    return run_in_workdir("nextmavens-bench-cli-", args.tmp, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
