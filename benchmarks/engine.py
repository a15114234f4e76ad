"""Benchmark of the multi-project engine, against a real throwaway PostgreSQL.

    python benchmarks/engine.py [--max-projects 200] [--repeats 7] [--rounds 5] [--budget-s 1500]

In one run, on one throwaway server (initdb + pg_ctl, loopback only; fsync switched off while growing and
switched on for the timed single-project applies, see below):

1. no-op plan time (median of several in-process `Engine.plan` calls, plan asserted empty) at 1, 50, 100 and
   200 applied projects (500 and 1000 with --max-projects), applied incrementally; the growth per project
   between sizes, so linearity can be judged; a breakdown (connect / observe / desired / make_plan) per size;
2. applying 50 new projects in one apply (the step from 50 to 100): wall time and time per kind of change;
3. at 200 projects, whole processes against whole processes: `nextmavens plan` (the CLI as a subprocess:
   interpreter start, imports, manifest loading, connect, observe, plan, print) against a plain pyinfra 3
   deploy run through `@local` doing comparable work for 200 other projects (per project four login roles
   WITH passwords, a database they own, and REVOKE/GRANT CONNECT on it; every fact read by running psql).
   pyinfra's timed run is `--dry`: it reads every fact and works out what to change without executing, which
   is what `plan` does (a real second run would also re-run ALTER ROLE ... PASSWORD for every role, since
   pyinfra cannot compare passwords, and is slower still). --rounds rounds (default 5), the two interleaved,
   medians compared: `cli_ratio` = pyinfra --dry / `nextmavens plan`. pyinfra's first (provisioning) run is
   timed once;
4. one new project added to 200 applied ones, timed alone (not a batch divided by its size): `nextmavens
   apply --yes` as a process and `Engine.apply` in-process, with fsync ON (the production setting) and, for
   comparison, fsync off, interleaved, median of --rounds each;
5. a summary, then exactly one last line:
   `plan200_s=<s> baseline_ratio=<x> cli_ratio=<x> apply1_s=<s>`, where plan200_s is the in-process no-op
   plan at 200, baseline_ratio is pyinfra --dry / that in-process plan (not like for like: kept for
   continuity), cli_ratio the whole-process ratio above, apply1_s one new project's `nextmavens apply` with
   fsync on.

Each project database costs ~7-8 MB of disk; the run checks free space and its time budget before growing
and says plainly when it stops short of a size. Everything runs under a watchdog and cleans up after itself.
The host is shared with other work: every figure is a median, the runs compared are interleaved, and the
load average is printed at the start and the end.
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

from devkit.localdb.server import LocalPostgres  # noqa: E402
from nextmavens.engine.desired import desired_state  # noqa: E402
from nextmavens.engine.observe import observe  # noqa: E402
from nextmavens.engine.plan import Change, make_plan  # noqa: E402
from nextmavens.engine.session import Engine, EngineConfig  # noqa: E402
from nextmavens.manifest.loader import ManifestSet, load_manifests  # noqa: E402

PLAN_SIZES = (1, 50, 100, 200, 500, 1000)
BASELINE_AT = 200  # engine size at which the whole-process comparison with pyinfra runs
NEW_BATCH_FROM, NEW_BATCH_TO = 50, 100  # "applying 50 new projects"
APPLY_CHUNK = 100  # grow in applies of at most this many new projects, checking time and disk between them
ORGS = 10
BASELINE_PREFIX = "pyi"  # pyinfra's own provisioned projects: pyi0001...; the engine's: p0001...
PROVISION_N = 20  # projects pyinfra provisions for its first-run figure (each database costs ~7.4 MiB of disk)
PYINFRA_TIMEOUT_S = 900
CLI_TIMEOUT_S = 120
DISK_RESERVE_BYTES = 1024**3
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
    projects: int  # declared by the --dry runs: the engine's own projects
    provisioned: int  # provisioned by pyinfra's first run, under its own names
    first_s: float  # provisioning run, timed once
    dry_s: list[float]  # `pyinfra --dry` on the provisioned server, one per round
    cli_s: list[float]  # `nextmavens plan` on the engine's projects, one per round, interleaved with dry_s
    ops: int
    verified: str
    first_tail: str
    dry_tail: str

    @property
    def cli_ratio(self) -> float:
        return statistics.median(self.dry_s) / statistics.median(self.cli_s)


@dataclass
class SingleApply:
    """One new project added to the applied ones, timed alone, by fsync setting and by how it is run."""

    cli_s: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})
    engine_s: dict[str, list[float]] = field(default_factory=lambda: {"on": [], "off": []})
    at: int = 0


@dataclass
class Results:
    plans: list[PlanPoint] = field(default_factory=list)
    applies: list[ApplyPoint] = field(default_factory=list)
    baseline: Baseline | None = None
    baseline_error: str | None = None
    single: SingleApply | None = None
    db_bytes: dict[int, int] = field(default_factory=dict)
    stopped_short: list[str] = field(default_factory=list)
    server_version: str = ""
    filesystem: str = ""
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
        self.fsync = "on"
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

    # -- whole processes ------------------------------------------------------------------------------

    def cli(self, *argv: str) -> float:
        """`nextmavens <argv>` as a process (Python start-up included); its wall time. Exit 0 required."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "NEXTMAVENS_", "PYTHONDONTWRITE"))},
            # Bytecode cached as an installed package has it (pip compiles at install; pyinfra's is), rather
            # than the project's sources recompiled by every run of this editable checkout.
            "PYTHONPYCACHEPREFIX": str(self.workdir / "pycache"),
            "NEXTMAVENS_DSN": self.server.dsn,
            "NEXTMAVENS_MASTER_KEY": str(self.master_key),
            "NEXTMAVENS_PROJECTS": str(self.projects),
            "PYTHONPATH": str(REPO),
        }
        t0 = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "nextmavens.cli", *argv],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(f"`nextmavens {' '.join(argv)}` exited {result.returncode}: {result.stderr[-800:]}")
        return elapsed

    # -- fsync -----------------------------------------------------------------------------------------

    def set_fsync(self, on: bool) -> None:
        """fsync, synchronous_commit and full_page_writes together, by ALTER SYSTEM and a reload; waits until
        a new session sees the value (bounded)."""
        value = "on" if on else "off"
        with psycopg.connect(self.server.dsn, autocommit=True, connect_timeout=10) as conn:
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(psycopg.sql.Identifier(name), value))
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self.sql("SHOW fsync")[0][0] != value or self.sql("SHOW synchronous_commit")[0][0] != value:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not take fsync={value} within 10 s")
            time.sleep(0.05)
        self.fsync = value

    # -- one new project, timed alone ------------------------------------------------------------------

    def single_applies(self) -> SingleApply:
        """Add one project at a time to the applied ones: `nextmavens apply --yes` as a process and
        Engine.apply in-process, with fsync on and off, interleaved; every apply is one new project."""
        single = SingleApply(at=self.count)
        for _ in range(self.args.rounds):
            for fsync in ("on", "off"):
                self.set_fsync(fsync == "on")
                self.sql("CHECKPOINT")
                self.count += 1
                write_manifest(self.projects, self.count)
                single.cli_s[fsync].append(self.cli("apply", "--yes"))
                self.count += 1
                write_manifest(self.projects, self.count)
                manifests = self.manifests()
                t0 = time.perf_counter()
                result = self.engine.apply(manifests)
                single.engine_s[fsync].append(time.perf_counter() - t0)
                touched = {c.project.rsplit("/", 1)[-1] for c in result.plan.changes} if result else set()
                expected = {ref_of(self.count), f"org{self.count % ORGS}"}  # the org is recorded once
                assert ref_of(self.count) in touched <= expected, f"one new project expected, not {touched}"
        self.set_fsync(False)
        say(
            "  one new project (median of "
            + ", ".join(
                f"{how} fsync {f} {fmt_s(statistics.median(samples[f]))}"
                for how, samples in (("`nextmavens apply`", single.cli_s), ("Engine.apply", single.engine_s))
                for f in ("on", "off")
            )
            + ")"
        )
        return single

    # -- pyinfra baseline ------------------------------------------------------------------------------

    def baseline(self, n: int) -> Baseline:
        folder = self.workdir / "pyinfra"
        folder.mkdir()
        deploy = folder / "deploy.py"
        deploy.write_text(
            textwrap.dedent(
                """\
                # A plain pyinfra deploy: per project four login roles with passwords, a database owned by the
                # first, CONNECT revoked from PUBLIC and granted to the roles; every fact read through psql
                # against the server given in the environment.
                import hashlib
                import os

                from pyinfra.operations import postgres

                conn = dict(
                    psql_user=os.environ["BENCH_PSQL_USER"],
                    psql_password=os.environ["BENCH_PSQL_PASSWORD"],
                    psql_host=os.environ["BENCH_PSQL_HOST"],
                    psql_port=int(os.environ["BENCH_PSQL_PORT"]),
                )

                for ref in os.environ["BENCH_REFS"].split(","):
                    roles = [f"{prefix}_{ref}" for prefix in ("owner", "authenticator", "auth_admin", "storage_admin")]
                    for role in roles:
                        password = hashlib.sha256(f"bench-{role}".encode()).hexdigest()
                        postgres.role(name=f"role {role}", role=role, login=True, password=password, **conn)
                    postgres.database(name=f"database {ref}", database=ref, owner=roles[0], **conn)
                    grantees = ", ".join(f'"{role}"' for role in roles[1:])
                    postgres.sql(
                        name=f"connect {ref}",
                        sql=(
                            f'REVOKE ALL ON DATABASE "{ref}" FROM PUBLIC;'
                            f' GRANT CONNECT ON DATABASE "{ref}" TO {grantees}'
                        ),
                        **conn,
                    )
                """
            )
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "PYINFRA"))},
            "BENCH_PSQL_USER": "postgres",
            "BENCH_PSQL_PASSWORD": self.server.password,
            "BENCH_PSQL_HOST": "127.0.0.1",
            "BENCH_PSQL_PORT": str(self.server.port),
        }

        def run(refs: list[str], flag: str) -> tuple[float, str]:
            # The interpreter directly rather than the `pyinfra` shim: no wrapper cost is charged to pyinfra.
            # `-y` runs the operations without a change-detection pass; `--dry` alone runs that pass (every
            # fact read) and stops before executing. (`-y --dry` together read no fact at all.)
            argv = [sys.executable, "-m", "pyinfra", flag, "@local", str(deploy)]
            t0 = time.perf_counter()
            result = subprocess.run(
                argv,
                cwd=folder,
                env=env | {"BENCH_REFS": ",".join(refs)},
                capture_output=True,
                text=True,
                timeout=PYINFRA_TIMEOUT_S,
            )
            elapsed = time.perf_counter() - t0
            output = (result.stdout + result.stderr).strip()
            if result.returncode != 0:
                raise RuntimeError(f"pyinfra exited {result.returncode}:\n{output[-3000:]}")
            return elapsed, output

        # Provisioning, under pyinfra's own names (a first run creates everything), then removed again.
        provision = [ref_of(i, BASELINE_PREFIX) for i in range(1, PROVISION_N + 1)]
        try:
            first_s, first_out = run(provision, "-y")
            verified = self.verify_baseline(provision)
        finally:
            self.drop_baseline(PROVISION_N)
        say(
            f"  pyinfra first run (provisioning {PROVISION_N} projects of its own): {fmt_s(first_s)};"
            f" verified: {verified}"
        )
        # The no-op comparison: pyinfra's deploy declares the engine's own n projects (the same role and
        # database names), so both tools read the same objects on the same server and neither needs more disk.
        refs = [ref_of(i) for i in range(1, n + 1)]
        self.sql("CHECKPOINT")
        self.cli("plan")  # warm-up: bytecode caches and file caches, as pyinfra's first run had
        dry_s: list[float] = []
        cli_s: list[float] = []
        dry_out = ""
        for round_number in range(1, self.args.rounds + 1):
            cli_s.append(self.cli("plan"))
            dry, dry_out = run(refs, "--dry")
            if "Detected changes" not in dry_out:
                raise RuntimeError(f"pyinfra --dry did not detect changes (no facts read?):\n{dry_out[-2000:]}")
            dry_s.append(dry)
            say(
                f"  round {round_number}: `nextmavens plan` {fmt_s(cli_s[-1])}, `pyinfra --dry` {fmt_s(dry)}"
                f" (load {_load()})"
            )
        return Baseline(n, PROVISION_N, first_s, dry_s, cli_s, 6 * n, verified, _tail(first_out), _tail(dry_out))

    def verify_baseline(self, refs: list[str]) -> str:
        """The deploy really reached the throwaway server: every role and database exists, owned as declared."""
        roles = {
            name: login
            for name, login in self.sql(
                "SELECT rolname, rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid WHERE rolname LIKE ANY(%s)",
                ([f"{p}_{BASELINE_PREFIX}%" for p in LOGIN_ROLE_PREFIXES],),
            )
        }
        databases = {
            name: owner
            for name, owner, public_connect in self.sql(
                "SELECT datname, pg_get_userbyid(datdba), has_database_privilege('public', oid, 'CONNECT')"
                " FROM pg_database WHERE datname LIKE %s",
                (f"{BASELINE_PREFIX}%",),
            )
            if not public_connect
        }
        missing = [f"{p}_{r}" for r in refs for p in LOGIN_ROLE_PREFIXES if not roles.get(f"{p}_{r}")]
        wrong = [r for r in refs if databases.get(r) != f"owner_{r}"]
        if missing or wrong:
            raise AssertionError(
                f"pyinfra baseline did not provision the server: {len(missing)} login roles with passwords missing "
                f"(e.g. {missing[:3]}), {len(wrong)} databases missing, wrongly owned or open to PUBLIC"
                f" (e.g. {wrong[:3]})"
            )
        return (
            f"{len(roles)} login roles with passwords and {len(databases)} databases owned by owner_<ref>,"
            f" CONNECT revoked from PUBLIC, found on port {self.server.port}"
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
        self.set_fsync(False)  # growing is not what is measured: fsync off until the single-project applies
        self.results.server_version = self.sql("SHOW server_version")[0][0]
        self.results.load_start = _load()
        sizes = [s for s in PLAN_SIZES if s <= args.max_projects]
        if args.max_projects not in sizes:
            sizes.append(args.max_projects)
        say(f"PostgreSQL {self.results.server_version} on 127.0.0.1:{self.server.port}, data in {self.workdir}")
        say("fsync, synchronous_commit and full_page_writes: off while growing, on for the timed single applies")
        say(f"the host is shared with other work (load average {self.results.load_start}): figures are medians")
        say(f"plan sizes: {sizes}; {args.repeats} timed no-op plans per size (after one warm-up)")
        say()
        say("== engine: grow, and time the no-op plan at each size ==")
        for size in sizes:
            if size > NEW_BATCH_FROM and self.count == NEW_BATCH_FROM and NEW_BATCH_TO <= args.max_projects:
                # Exactly 50 new projects in one apply: the batch provisioning figure.
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
                self.compare_at_baseline()
                if size != sizes[-1]:
                    say()
                    say("== engine: continue growing ==")
        return self.results

    def compare_at_baseline(self) -> None:
        say()
        say(
            f"== whole processes at {BASELINE_AT} projects: `nextmavens plan` vs `pyinfra --dry` "
            f"({self.args.rounds} rounds, interleaved) =="
        )
        try:
            self.results.baseline = self.baseline(BASELINE_AT)
        except Exception as exc:  # the engine figures still stand; say what failed
            self.results.baseline_error = f"{type(exc).__name__}: {exc}"
            say(f"  !! baseline failed: {self.results.baseline_error}")
        say()
        say(f"== one new project added to {self.count} applied ones, timed alone ({self.args.rounds} rounds) ==")
        self.results.single = self.single_applies()


def _tail(output: str) -> str:
    """pyinfra's results table: its header and grand total (success / error / no change counts)."""
    marks = ("Operation", "Grand total", "Detected changes")
    kept = [line.rstrip() for line in output.splitlines() if any(mark in line for mark in marks)]
    return "\n".join(kept) or "\n".join(output.splitlines()[-5:])


def report(results: Results, args: argparse.Namespace) -> str:
    say()
    say("=" * 78)
    say(f"RESULTS (PostgreSQL {results.server_version}, loopback; Python {sys.version.split()[0]})")
    say(
        f"machine: {os.cpu_count()} CPUs, shared with other work; load average {results.load_start} at start, "
        f"{_load()} at the end"
    )
    say(
        "fsync: off for growing and the no-op plans (plans only read), on and off for the single applies;"
        f" the data is on {results.filesystem}"
        + (" (in memory: fsync costs nothing there)" if results.filesystem in ("tmpfs", "ramfs") else "")
    )
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
    say()
    say("Apply (Engine.apply with fsync off, wall time including connect, lock, observe, plan, secrets, SQL, audit)")
    say(f"  {'from -> to':>12}  {'new':>5}  {'wall':>10}  {'per project':>12}  {'changes':>8}")
    for a in results.applies:
        span = f"{a.start} -> {a.end}"
        say(f"  {span:>12}  {a.new:>5}  {fmt_s(a.wall_s):>10}  {fmt_s(a.per_project_s):>12}  {a.changes:>8}")
    batch = next((a for a in results.applies if (a.start, a.end) == (NEW_BATCH_FROM, NEW_BATCH_TO)), None)
    if batch:
        say()
        say(
            f"  Applying 50 new projects ({batch.start} -> {batch.end}, one apply): {fmt_s(batch.wall_s)} total, "
            f"{fmt_s(batch.per_project_s)} per project (a batch divided by its size; one project alone is below)"
        )
        say("  time by kind of change in that apply (count; total; per change):")
        for kind, seconds in sorted(batch.by_kind.items(), key=lambda kv: -kv[1]):
            count = batch.count_by_kind.get(kind, 0)
            per = f"{fmt_s(seconds / count)} each" if count else ""
            say(f"    {kind:<32} {count:>5}  {fmt_s(seconds):>10}  {per}")
    if results.db_bytes:
        size, nbytes = max(results.db_bytes.items())
        say(f"  average project database size at {size} projects: {nbytes / 1024**2:.1f} MiB")
    single = results.single
    apply1 = float("nan")
    if single and single.cli_s["on"]:
        apply1 = statistics.median(single.cli_s["on"])
        say()
        say(f"One new project added to {single.at} applied ones, timed alone (median of {len(single.cli_s['on'])})")
        for how, samples in (
            ("`nextmavens apply --yes` (process)", single.cli_s),
            ("Engine.apply (in-process)", single.engine_s),
        ):
            say(
                f"  {how:<36} fsync on {fmt_s(statistics.median(samples['on'])):>9}   "
                f"fsync off {fmt_s(statistics.median(samples['off'])):>9}"
            )
        say("  (database side only: no edge configured, so no containers, Kong or nginx; edge.py times those)")
    say()
    say(
        f"Whole processes at {BASELINE_AT} projects: `nextmavens plan` vs pyinfra 3 via @local (per project"
        " postgres.role x4 with passwords, postgres.database, postgres.sql REVOKE/GRANT CONNECT)"
    )
    b = results.baseline
    plan_at = next((p.median_s for p in results.plans if p.projects == BASELINE_AT), float("nan"))
    cli_ratio = ratio = float("nan")
    if b is None:
        say(f"  not measured: {results.baseline_error or f'the run did not reach {BASELINE_AT} projects'}")
    else:
        dry, cli = statistics.median(b.dry_s), statistics.median(b.cli_s)
        cli_ratio, ratio = b.cli_ratio, dry / plan_at
        per = fmt_s(b.first_s / b.provisioned)
        say(
            f"  pyinfra first run, provisioning {b.provisioned} projects of its own (once): {fmt_s(b.first_s)}"
            f"  ({per} per project); verified: {b.verified}"
        )
        say(
            f"  the --dry runs declare the engine's own {b.projects} projects (same role and database names):"
            f" {b.ops} operations, each role and database operation reading its fact with psql"
        )
        say(
            f"  pyinfra --dry (median of {len(b.dry_s)}): {fmt_s(dry)}  samples " + ", ".join(fmt_s(x) for x in b.dry_s)
        )
        say(
            f"  `nextmavens plan` (median of {len(b.cli_s)}): {fmt_s(cli)}  samples "
            + ", ".join(fmt_s(x) for x in b.cli_s)
        )
        say("  Python bytecode is cached for both: pyinfra's as installed, the nextmavens checkout's through")
        say("  PYTHONPYCACHEPREFIX after one warm-up run (an installed package has its bytecode compiled at install).")
        say("  pyinfra's own summary of the --dry run:")
        say(textwrap.indent(b.dry_tail, "    | "))
        say("  Both read the same objects on the same server. The engine's plan checks far more per")
        say("  project than pyinfra's deploy declares (memberships, role settings, schemas, default privileges,")
        say("  extensions, functions, event triggers, publication, stored secrets and password verifiers) and still")
        say("  reads the cluster in a fixed number of queries; pyinfra runs one psql per fact, so per operation.")
        say(
            f"  cli_ratio = pyinfra --dry / `nextmavens plan` = {cli_ratio:.1f}x (goal >= 20x); against the "
            f"in-process Engine.plan ({fmt_s(plan_at)}, no interpreter start): {ratio:.1f}x"
        )
    say()
    plan200 = next((p.median_s for p in results.plans if p.projects == 200), float("nan"))
    say("Targets")
    say(
        f"  no-op plan for 200 projects <= 0.5 s:          {fmt_s(plan200)}  "
        f"{_verdict(plan200 <= 0.5) if plan200 == plan200 else '(not reached)'}"
    )
    verdict = _verdict(cli_ratio >= 20) if b else "(not measured)"
    say(f"  whole processes >= 20x faster than pyinfra:    {cli_ratio:.1f}x  {verdict}")
    if single:
        say(f"  one new project <= 1 s (apply, fsync on):      {fmt_s(apply1)}  {_verdict(apply1 <= 1)}")
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
    return (
        f"plan200_s={_num(plan200)} baseline_ratio={_num(ratio, 1)} cli_ratio={_num(cli_ratio, 1)}"
        f" apply1_s={_num(apply1, 3)}"
    )


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path`, from the longest matching mount point in /proc/mounts."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and str(path).startswith(parts[1].rstrip("/") + "/") and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _num(value: float, digits: int = 4) -> str:
    return "nan" if value != value else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-projects", type=int, default=200, help="largest size to grow to (default 200)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the whole-process comparisons (default 5, >= 5)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed no-op plans per size (default 5)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=1500.0,
        help="time budget for growing; sizes that would not fit are skipped and reported (default 1500)",
    )
    parser.add_argument("--settle-s", type=float, default=3.0, help="pause after CHECKPOINT before timing plans")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=Path("/tmp"),
        help="where the throwaway server's folder goes (default /tmp); its filesystem type is printed, since"
        " fsync costs nothing on tmpfs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the server is stopped)")
    args = parser.parse_args()
    if args.max_projects < 1:
        parser.error("--max-projects must be at least 1")
    if args.rounds < 5:
        parser.error("--rounds must be at least 5: the comparisons are medians of at least five runs")

    def on_alarm(_signum: int, _frame: object) -> None:
        raise Watchdog(f"watchdog: the benchmark ran longer than {args.budget_s + 900:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.budget_s + 900))

    workdir = Path(tempfile.mkdtemp(prefix="nextmavens-bench-", dir=args.tmp))
    workdir.chmod(0o711)  # the server runs as `postgres` when we are root: it must pass through
    free = shutil.disk_usage(workdir).free
    fs = filesystem_type(workdir)
    say(f"free space at {workdir} ({fs}): {free / 1024**3:.1f} GiB (each project database takes ~7-8 MiB)")
    if fs in ("tmpfs", "ramfs"):
        say("!! the data is in memory: fsync costs nothing there, so the fsync-on figures are not a disk's")
    server = LocalPostgres(base=workdir / "server")  # fsync is set by ALTER SYSTEM: off to grow, on to time
    final_line = ""
    try:
        server.start()
        bench = Bench(args, workdir, server)
        bench.results.filesystem = fs
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
