"""Benchmark of the multi-project engine (issue 2, "Performance"), against a real throwaway PostgreSQL.

    python benchmarks/engine.py [--max-projects 1000] [--repeats 7] [--budget-s 1500]

In one run, on one throwaway server (initdb + pg_ctl, fsync off, loopback only):

1. no-op plan time (median of several `Engine.plan` calls, plan asserted empty) at 1, 50, 100, 200, 500 and
   1000 applied projects, applied incrementally; the growth per project between sizes, so linearity can be
   judged; a breakdown (connect / observe / desired / make_plan) at each size;
2. applying 50 new projects (the step from 50 to 100): wall time, per project, and time per kind of change;
3. the pyinfra baseline: the same kind of 50 projects provisioned by a plain pyinfra 3 deploy run through
   `@local` (`postgres.role` x4 + `postgres.database` per project, psql connection arguments so every fact
   runs psql against the throwaway server), first run and no-op second run, with a separate name prefix;
4. a summary, then exactly one last line: `plan200_s=<seconds> baseline_ratio=<ratio>`, where baseline_ratio
   is (pyinfra no-op run) / (engine no-op plan at 50 projects).

Each project database costs ~7-8 MB of disk; the run checks free space and its time budget before growing
and says plainly when it stops short of a size. Everything runs under a watchdog and cleans up after itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import yaml  # noqa: E402

from nextmavens.engine.desired import desired_state  # noqa: E402
from nextmavens.engine.observe import observe  # noqa: E402
from nextmavens.engine.plan import Change, make_plan  # noqa: E402
from nextmavens.engine.session import Engine, EngineConfig  # noqa: E402
from nextmavens.localdb import LocalPostgres  # noqa: E402
from nextmavens.manifest.loader import ManifestSet, load_manifests  # noqa: E402

PLAN_SIZES = (1, 50, 100, 200, 500, 1000)
BASELINE_AT = 50  # engine size at which the pyinfra baseline runs (and the ratio's denominator)
NEW_BATCH_FROM, NEW_BATCH_TO = 50, 100  # "applying 50 new projects"
APPLY_CHUNK = 100  # grow in applies of at most this many new projects, checking time and disk between them
ORGS = 10
BASELINE_PREFIX = "pyi"  # pyinfra's projects: pyi0001...; the engine's: p0001...
PYINFRA_TIMEOUT_S = 600
DISK_RESERVE_BYTES = 3 * 1024**3
LOGIN_ROLE_PREFIXES = ("owner", "authenticator", "auth_admin", "storage_admin")


class Watchdog(Exception):
    pass


@dataclass
class PlanPoint:
    projects: int
    median_s: float
    min_s: float
    max_s: float
    samples: list[float]
    load_manifests_s: float
    breakdown: dict[str, float]
    cpu_median_s: float  # this process's CPU time per plan: insensitive to waiting on a busy machine


@dataclass
class ApplyPoint:
    start: int
    end: int
    wall_s: float
    changes: int
    by_kind: dict[str, float] = field(default_factory=dict)
    count_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return self.end - self.start

    @property
    def per_project_s(self) -> float:
        return self.wall_s / self.new if self.new else float("nan")


@dataclass
class Baseline:
    projects: int
    first_s: float
    noop_s: float
    ops: int
    verified: str
    first_tail: str
    noop_tail: str


@dataclass
class Results:
    plans: list[PlanPoint] = field(default_factory=list)
    applies: list[ApplyPoint] = field(default_factory=list)
    baseline: Baseline | None = None
    baseline_error: str | None = None
    cli_plan_s: dict[int, float] = field(default_factory=dict)
    db_bytes: dict[int, int] = field(default_factory=dict)
    stopped_short: list[str] = field(default_factory=list)
    server_version: str = ""
    load_start: str = ""


def ref_of(i: int, prefix: str = "p") -> str:
    return f"{prefix}{i:04d}"


def write_manifest(root: Path, i: int) -> None:
    ref = ref_of(i)
    manifest = {"ref": ref, "name": f"Bench project {i}", "auth": {"site_url": f"https://{ref}.example"}}
    path = root / f"org{i % ORGS}" / f"{ref}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def fmt_s(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "n/a"
    if abs(seconds) < 0.01:
        return f"{seconds * 1000:.3f} ms"
    return f"{seconds * 1000:.1f} ms" if abs(seconds) < 1 else f"{seconds:.2f} s"


def say(text: str = "") -> None:
    print(text, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, server: LocalPostgres) -> None:
        self.args = args
        self.workdir = workdir
        self.server = server
        self.projects = workdir / "projects"
        self.projects.mkdir()
        self.master_key = workdir / "keys" / "master.key"
        self.engine = Engine(
            EngineConfig(dsn=server.dsn, master_key_path=self.master_key, lock_timeout_s=60, actor="bench")
        )
        self.count = 0
        self.started = time.monotonic()
        self.results = Results()

    # -- helpers ---------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sql(self, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with psycopg.connect(self.server.dsn, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def manifests(self) -> ManifestSet:
        return load_manifests(self.projects)

    # -- engine: apply ---------------------------------------------------------------------------------

    def apply_to(self, target: int) -> ApplyPoint:
        start = self.count
        for i in range(start + 1, target + 1):
            write_manifest(self.projects, i)
        manifests = self.manifests()
        marks: list[tuple[str, float]] = []

        def before(change: Change) -> None:
            marks.append((change.kind, time.perf_counter()))

        t0 = time.perf_counter()
        result = self.engine.apply(manifests, on_change=before)
        t1 = time.perf_counter()
        assert result is not None
        point = ApplyPoint(start, target, t1 - t0, len(result.plan.changes))
        by_kind: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        if marks:
            by_kind["(connect, lock, observe, plan)"] = marks[0][1] - t0
        for index, (kind, at) in enumerate(marks):
            until = marks[index + 1][1] if index + 1 < len(marks) else t1  # the last one includes the audit close
            by_kind[kind] += until - at
            counts[kind] += 1
        point.by_kind, point.count_by_kind = dict(by_kind), dict(counts)
        self.count = target
        return point

    def grow_to(self, target: int) -> bool:
        """Apply projects up to `target` in chunks; False (with a plain reason) when time or disk runs out."""
        while self.count < target:
            step_to = min(target, self.count + APPLY_CHUNK)
            reason = self.cannot_grow(step_to)
            if reason:
                self.results.stopped_short.append(f"stopped at {self.count} projects, before {target}: {reason}")
                say(f"  !! {self.results.stopped_short[-1]}")
                return False
            point = self.apply_to(step_to)
            self.results.applies.append(point)
            say(
                f"  applied {point.start} -> {point.end}: {fmt_s(point.wall_s)} "
                f"({fmt_s(point.per_project_s)} per new project, {point.changes} changes)"
            )
        return True

    def per_project_apply_s(self) -> float:
        timed = [a for a in self.results.applies if a.new >= 10]
        if not timed:
            return 2.0
        return max(a.per_project_s for a in timed[-2:])

    def avg_db_bytes(self) -> int:
        rows = self.sql("SELECT avg(pg_database_size(datname))::bigint FROM pg_database WHERE datname ~ '^p[0-9]{4}$'")
        return int(rows[0][0] or 8 * 1024**2)

    def cannot_grow(self, step_to: int) -> str | None:
        new = step_to - self.count
        free = shutil.disk_usage(self.workdir).free
        need = int(new * self.avg_db_bytes() * 1.5) + DISK_RESERVE_BYTES
        if free < need:
            return f"disk: {free / 1024**3:.1f} GiB free, {need / 1024**3:.1f} GiB needed for {new} more projects"
        remaining = self.args.budget_s - self.elapsed()
        estimate = new * self.per_project_apply_s() + 30
        if estimate > remaining:
            return (
                f"time: {new} more projects would take ~{estimate:.0f} s at the measured rate, "
                f"{remaining:.0f} s left of the --budget-s {self.args.budget_s:.0f} s"
            )
        return None

    # -- engine: no-op plan ----------------------------------------------------------------------------

    def settle(self) -> None:
        """Let the server finish the apply's after-work (checkpoint) so plan timings are not skewed by it."""
        self.sql("CHECKPOINT")
        time.sleep(self.args.settle_s)

    def measure_plan(self) -> PlanPoint:
        self.settle()
        t0 = time.perf_counter()
        manifests = self.manifests()
        load_s = time.perf_counter() - t0
        assert len(manifests.projects) == self.count
        self.engine.plan(manifests)  # warm-up (first connection after an apply, caches)
        samples, cpu = [], []
        for _ in range(self.args.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            plan = self.engine.plan(manifests)
            samples.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if not plan.empty:
                shown = "\n".join(
                    f"    {c.project} {c.action} {c.kind} {c.target}: {c.detail}" for c in plan.changes[:20]
                )
                raise AssertionError(f"no-op plan at {self.count} projects is not empty:\n{shown}")
        point = PlanPoint(
            self.count,
            statistics.median(samples),
            min(samples),
            max(samples),
            samples,
            load_s,
            self.plan_breakdown(manifests),
            statistics.median(cpu),
        )
        self.results.plans.append(point)
        say(
            f"  no-op plan at {self.count:>4} projects: median {fmt_s(point.median_s)} "
            f"(min {fmt_s(point.min_s)}, max {fmt_s(point.max_s)}, n={len(samples)}, "
            f"client CPU {fmt_s(point.cpu_median_s)}); "
            + ", ".join(f"{k} {fmt_s(v)}" for k, v in point.breakdown.items())
            + f"; load_manifests {fmt_s(load_s)}"
        )
        return point

    def plan_breakdown(self, manifests: ManifestSet) -> dict[str, float]:
        """Engine.plan's steps timed one by one (median of 3): where the time goes as projects grow."""
        runs: dict[str, list[float]] = defaultdict(list)
        for _ in range(3):
            t0 = time.perf_counter()
            with self.engine._connections(create_key=False) as (cluster, control, sealer):
                t1 = time.perf_counter()
                observed = observe(cluster, control, sealer)
                t2 = time.perf_counter()
            desired = desired_state(manifests)
            t3 = time.perf_counter()
            make_plan(desired, observed)
            t4 = time.perf_counter()
            runs["connect"].append(t1 - t0)
            runs["observe"].append(t2 - t1)
            runs["desired"].append(t3 - t2)
            runs["make_plan"].append(t4 - t3)
        return {k: statistics.median(v) for k, v in runs.items()}

    def measure_cli_plan(self) -> None:
        """`nextmavens plan` as a process (Python start-up included): the like-for-like figure to pyinfra's CLI."""
        env = {
            **os.environ,
            "NEXTMAVENS_DSN": self.server.dsn,
            "NEXTMAVENS_MASTER_KEY": str(self.master_key),
            "NEXTMAVENS_PROJECTS": str(self.projects),
            "PYTHONPATH": str(REPO),
        }
        t0 = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "nextmavens.cli", "plan"],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            say(f"  !! `nextmavens plan` exited {result.returncode}: {result.stderr.strip()[-500:]}")
            return
        self.results.cli_plan_s[self.count] = elapsed
        say(f"  `nextmavens plan` as a process at {self.count} projects: {fmt_s(elapsed)} (exit 0, no changes)")

    # -- pyinfra baseline ------------------------------------------------------------------------------

    def baseline(self, n: int) -> Baseline:
        folder = self.workdir / "pyinfra"
        folder.mkdir()
        deploy = folder / "deploy.py"
        deploy.write_text(
            textwrap.dedent(
                """\
                # A plain pyinfra deploy: per project four login roles and a database they own, each operation
                # reading its fact through psql against the server given in the environment.
                import os

                from pyinfra.operations import postgres

                conn = dict(
                    psql_user=os.environ["BENCH_PSQL_USER"],
                    psql_password=os.environ["BENCH_PSQL_PASSWORD"],
                    psql_host=os.environ["BENCH_PSQL_HOST"],
                    psql_port=int(os.environ["BENCH_PSQL_PORT"]),
                )

                for ref in os.environ["BENCH_REFS"].split(","):
                    for prefix in ("owner", "authenticator", "auth_admin", "storage_admin"):
                        postgres.role(name=f"role {prefix}_{ref}", role=f"{prefix}_{ref}", login=True, **conn)
                    postgres.database(name=f"database {ref}", database=ref, owner=f"owner_{ref}", **conn)
                """
            )
        )
        refs = [ref_of(i, BASELINE_PREFIX) for i in range(1, n + 1)]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "PYINFRA"))},
            "BENCH_PSQL_USER": "postgres",
            "BENCH_PSQL_PASSWORD": self.server.password,
            "BENCH_PSQL_HOST": "127.0.0.1",
            "BENCH_PSQL_PORT": str(self.server.port),
            "BENCH_REFS": ",".join(refs),
        }
        # The interpreter directly rather than the `pyinfra` shim: no wrapper cost is charged to pyinfra.
        argv = [sys.executable, "-m", "pyinfra", "-y", "@local", str(deploy)]

        def run() -> tuple[float, str]:
            t0 = time.perf_counter()
            result = subprocess.run(
                argv, cwd=folder, env=env, capture_output=True, text=True, timeout=PYINFRA_TIMEOUT_S
            )
            elapsed = time.perf_counter() - t0
            output = (result.stdout + result.stderr).strip()
            if result.returncode != 0:
                raise RuntimeError(f"pyinfra exited {result.returncode}:\n{output[-3000:]}")
            return elapsed, output

        first_s, first_out = run()
        verified = self.verify_baseline(refs)
        noop_s, noop_out = run()
        verified_again = self.verify_baseline(refs)
        assert verified == verified_again
        return Baseline(n, first_s, noop_s, 5 * n, verified, _tail(first_out), _tail(noop_out))

    def verify_baseline(self, refs: list[str]) -> str:
        """The deploy really reached the throwaway server: every role and database exists, owned as declared."""
        roles = {
            name: login
            for name, login in self.sql(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE ANY(%s)",
                ([f"{p}_{BASELINE_PREFIX}%" for p in LOGIN_ROLE_PREFIXES],),
            )
        }
        databases = dict(
            self.sql(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE %s",
                (f"{BASELINE_PREFIX}%",),
            )
        )
        missing = [f"{p}_{r}" for r in refs for p in LOGIN_ROLE_PREFIXES if not roles.get(f"{p}_{r}")]
        wrong = [r for r in refs if databases.get(r) != f"owner_{r}"]
        if missing or wrong:
            raise AssertionError(
                f"pyinfra baseline did not provision the server: {len(missing)} login roles missing "
                f"(e.g. {missing[:3]}), {len(wrong)} databases missing or wrongly owned (e.g. {wrong[:3]})"
            )
        return (
            f"{len(roles)} login roles and {len(databases)} databases owned by owner_<ref>"
            f" found on port {self.server.port}"
        )

    def drop_baseline(self, n: int) -> None:
        """Remove pyinfra's objects so the engine's larger sizes are measured on the engine's projects alone."""
        with psycopg.connect(self.server.dsn, autocommit=True) as conn:
            for i in range(1, n + 1):
                ref = ref_of(i, BASELINE_PREFIX)
                conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(ref)))
                for prefix in LOGIN_ROLE_PREFIXES:
                    conn.execute(
                        psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(f"{prefix}_{ref}"))
                    )

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> Results:
        args = self.args
        self.results.server_version = self.sql("SHOW server_version")[0][0]
        self.results.load_start = _load()
        sizes = [s for s in PLAN_SIZES if s <= args.max_projects]
        if args.max_projects not in sizes:
            sizes.append(args.max_projects)
        say(f"PostgreSQL {self.results.server_version} on 127.0.0.1:{self.server.port} (fsync off)")
        say(f"data in {self.workdir}")
        say(f"plan sizes: {sizes}; {args.repeats} timed no-op plans per size (after one warm-up)")
        say()
        say("== engine: grow, and time the no-op plan at each size ==")
        for size in sizes:
            if size > NEW_BATCH_FROM and self.count == NEW_BATCH_FROM and NEW_BATCH_TO <= args.max_projects:
                # Exactly 50 new projects in one apply: the provisioning figure.
                point = self.apply_to(NEW_BATCH_TO)
                self.results.applies.append(point)
                say(
                    f"  applied {point.start} -> {point.end} (50 new, one apply): {fmt_s(point.wall_s)} "
                    f"({fmt_s(point.per_project_s)} per project, {point.changes} changes)"
                )
            if not self.grow_to(size):
                break
            self.measure_plan()
            self.results.db_bytes[self.count] = self.avg_db_bytes()
            if size == BASELINE_AT:
                self.measure_cli_plan()
                say()
                say(f"== pyinfra baseline: {BASELINE_AT} projects through @local, psql per fact ==")
                try:
                    self.results.baseline = self.baseline(BASELINE_AT)
                    b = self.results.baseline
                    say(f"  first run (provisioning): {fmt_s(b.first_s)}; verified: {b.verified}")
                    say(f"  second run (no-op):       {fmt_s(b.noop_s)}")
                    say("  pyinfra's own summary of the first run:")
                    say(textwrap.indent(b.first_tail, "    | "))
                    say("  pyinfra's own summary of the no-op run:")
                    say(textwrap.indent(b.noop_tail, "    | "))
                except Exception as exc:  # the engine figures still stand; say what failed
                    self.results.baseline_error = f"{type(exc).__name__}: {exc}"
                    say(f"  !! baseline failed: {self.results.baseline_error}")
                finally:
                    self.drop_baseline(BASELINE_AT)
                say()
                say("== engine: continue growing ==")
        if self.count >= 200:
            self.measure_cli_plan()
        return self.results


def _tail(output: str) -> str:
    """pyinfra's results table: its header and grand total (success / error / no change counts)."""
    kept = [line.rstrip() for line in output.splitlines() if "Operation" in line or "Grand total" in line]
    return "\n".join(kept) or "\n".join(output.splitlines()[-5:])


def report(results: Results, args: argparse.Namespace) -> str:
    say()
    say("=" * 78)
    say(f"RESULTS (PostgreSQL {results.server_version}, fsync off, loopback; Python {sys.version.split()[0]})")
    say(f"machine: {os.cpu_count()} CPUs, load average {results.load_start} at start, {_load()} at the end")
    say("=" * 78)
    say()
    say("No-op plan (Engine.plan with manifests already loaded; median of the timed calls, plan asserted empty)")
    say(
        f"  {'projects':>8}  {'median':>10}  {'min':>10}  {'max':>10}  {'client CPU':>10}  "
        f"{'median/proj':>11}  {'growth/project: median':>22}  {'min':>9}  {'CPU':>9}"
    )
    previous: PlanPoint | None = None
    for p in results.plans:
        cells = [fmt_s(p.median_s), fmt_s(p.min_s), fmt_s(p.max_s), fmt_s(p.cpu_median_s)]
        line = f"  {p.projects:>8}  " + "  ".join(f"{c:>10}" for c in cells) + f"  {fmt_s(p.median_s / p.projects):>11}"
        if previous:
            added = p.projects - previous.projects
            line += (
                f"  {fmt_s((p.median_s - previous.median_s) / added):>22}"
                f"  {fmt_s((p.min_s - previous.min_s) / added):>9}"
                f"  {fmt_s((p.cpu_median_s - previous.cpu_median_s) / added):>9}"
            )
        say(line)
        previous = p
    say("  growth/project = (time at this size - time at the previous size) / projects added. Constant growth")
    say("  means linear plan time; growth rising with size means super-linear. Wall times on a busy machine are")
    say("  noisy; the min and the client CPU columns (this process: observe's row handling, desired, make_plan)")
    say("  are the steadier signals.")
    say()
    say("  Where a no-op plan's time goes (median of 3 each):")
    heads = ("connect", "observe", "desired", "make_plan")
    say(f"  {'projects':>8}  " + "  ".join(f"{h:>10}" for h in heads) + f"  {'load_manifests*':>15}")
    for p in results.plans:
        parts = "  ".join(f"{fmt_s(p.breakdown[h]):>10}" for h in heads)
        say(f"  {p.projects:>8}  {parts}  {fmt_s(p.load_manifests_s):>15}")
    say("  * load_manifests is not part of Engine.plan's figure; the CLI pays it on top.")
    for size, seconds in sorted(results.cli_plan_s.items()):
        say(f"  `nextmavens plan` as a whole process at {size} projects (start-up, imports, load): {fmt_s(seconds)}")
    say()
    say("Apply (Engine.apply, wall time including connect, lock, observe, plan, secrets, SQL, audit)")
    say(f"  {'from -> to':>12}  {'new':>5}  {'wall':>10}  {'per project':>12}  {'changes':>8}")
    for a in results.applies:
        span = f"{a.start} -> {a.end}"
        say(f"  {span:>12}  {a.new:>5}  {fmt_s(a.wall_s):>10}  {fmt_s(a.per_project_s):>12}  {a.changes:>8}")
    batch = next((a for a in results.applies if (a.start, a.end) == (NEW_BATCH_FROM, NEW_BATCH_TO)), None)
    if batch:
        say()
        say(
            f"  Applying 50 new projects ({batch.start} -> {batch.end}, one apply): {fmt_s(batch.wall_s)} total, "
            f"{fmt_s(batch.per_project_s)} per project (target: <= 1 s per project on the database side)"
        )
        say("  time by kind of change in that apply (count; total; per change):")
        for kind, seconds in sorted(batch.by_kind.items(), key=lambda kv: -kv[1]):
            count = batch.count_by_kind.get(kind, 0)
            per = f"{fmt_s(seconds / count)} each" if count else ""
            say(f"    {kind:<32} {count:>5}  {fmt_s(seconds):>10}  {per}")
    if results.db_bytes:
        size, nbytes = max(results.db_bytes.items())
        say(f"  average project database size at {size} projects: {nbytes / 1024**2:.1f} MiB")
    say()
    say("pyinfra baseline (pyinfra 3 via @local: postgres.role x4 + postgres.database per project, psql per fact)")
    b = results.baseline
    plan50 = next((p.median_s for p in results.plans if p.projects == BASELINE_AT), float("nan"))
    if b is None:
        say(f"  not measured: {results.baseline_error or f'the run did not reach {BASELINE_AT} projects'}")
    else:
        say(f"  {b.projects} projects = {b.ops} operations, each reading its fact by running psql")
        say(f"  first run (provisioning):  {fmt_s(b.first_s)}  ({fmt_s(b.first_s / b.projects)} per project)")
        say(f"  second run (no-op):        {fmt_s(b.noop_s)}  ({fmt_s(b.noop_s / b.projects)} per project)")
        say(f"  verified on the server:    {b.verified}")
        say("  Note: the baseline does far less per project than the engine: 4 roles without passwords (a")
        say("  password would make every pyinfra run re-execute ALTER ROLE) and a database from template1; no")
        say("  REVOKE/GRANT CONNECT, no memberships or role settings, no secrets or audit, no Supabase layer")
        say("  (schemas, default privileges, extensions, functions, event triggers, publication).")
        say()
        say("  Comparison")
        say(
            f"    no-op:        pyinfra {fmt_s(b.noop_s)} vs engine plan {fmt_s(plan50)} at {BASELINE_AT} projects"
            f" -> pyinfra/engine = {b.noop_s / plan50:.1f}x (target >= 20x)"
        )
        cli50 = results.cli_plan_s.get(BASELINE_AT)
        if cli50:
            say(
                f"    no-op, both as CLI processes: pyinfra {fmt_s(b.noop_s)} vs `nextmavens plan` {fmt_s(cli50)}"
                f" -> {b.noop_s / cli50:.1f}x"
            )
        if batch:
            say(
                f"    provisioning: pyinfra first run {fmt_s(b.first_s)} vs engine apply of 50 new "
                f"{fmt_s(batch.wall_s)} -> engine/pyinfra = {batch.wall_s / b.first_s:.2f}x"
                " (the engine does several times the work per project)"
            )
    say()
    plan200 = next((p.median_s for p in results.plans if p.projects == 200), float("nan"))
    say("Targets (issue 2)")
    say(
        f"  no-op plan for 200 projects <= 0.5 s:        {fmt_s(plan200)}  "
        f"{_verdict(plan200 <= 0.5) if plan200 == plan200 else '(not reached)'}"
    )
    ratio = b.noop_s / plan50 if b else float("nan")
    verdict = _verdict(ratio >= 20) if b else "(not measured)"
    say(f"  >= 20x faster than the pyinfra baseline:     {ratio:.1f}x  {verdict}")
    if batch:
        verdict = _verdict(batch.per_project_s <= 1)
        say(f"  one new project <= 1 s (apply of 50, whole): {fmt_s(batch.per_project_s)}  {verdict}")
    spans = [(e, later) for e, later in zip(results.plans, results.plans[1:], strict=False) if later.projects >= 50]
    if len(spans) >= 2:
        cpu_growth = [(later.cpu_median_s - e.cpu_median_s) / (later.projects - e.projects) for e, later in spans]
        steady = min(cpu_growth[:2])
        rising = cpu_growth[-1] / steady if steady > 0 else float("inf")
        verdict = "met" if rising <= 2 else f"NOT MET (growth per project rises {rising:.1f}x from the first spans)"
        say(
            "  plan time growing linearly (client CPU growth per project between sizes: "
            + ", ".join(
                f"{e.projects}->{later.projects} {fmt_s(g)}" for (e, later), g in zip(spans, cpu_growth, strict=True)
            )
            + f"): {verdict}"
        )
    for note in results.stopped_short:
        say(f"  NOT MEASURED: {note}")
    if args.max_projects < 1000:
        say(f"  NOT MEASURED: sizes above --max-projects {args.max_projects}")
    return f"plan200_s={_num(plan200)} baseline_ratio={_num(ratio, 1)}"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _num(value: float, digits: int = 4) -> str:
    return "nan" if value != value else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-projects", type=int, default=1000, help="largest size to grow to (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed no-op plans per size (default 7)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=1500.0,
        help="time budget for growing; sizes that would not fit are skipped and reported (default 1500)",
    )
    parser.add_argument("--settle-s", type=float, default=3.0, help="pause after CHECKPOINT before timing plans")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the server is stopped)")
    args = parser.parse_args()
    if args.max_projects < 1:
        parser.error("--max-projects must be at least 1")

    def on_alarm(_signum: int, _frame: object) -> None:
        raise Watchdog(f"watchdog: the benchmark ran longer than {args.budget_s + 900:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.budget_s + 900))

    workdir = Path(tempfile.mkdtemp(prefix="nextmavens-bench-", dir="/tmp"))
    workdir.chmod(0o711)  # the server runs as `postgres` when we are root: it must pass through
    free = shutil.disk_usage(workdir).free
    say(f"free disk at {workdir}: {free / 1024**3:.1f} GiB (each project database takes ~7-8 MiB)")
    server = LocalPostgres(base=workdir / "server", fast=True)
    final_line = ""
    try:
        server.start()
        bench = Bench(args, workdir, server)
        try:
            results = bench.run()
        finally:
            say(f"\n(benchmark wall time {bench.elapsed():.0f} s)")
        signal.alarm(0)
        final_line = report(results, args)
    finally:
        signal.alarm(0)
        try:
            server.stop()
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print(final_line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
