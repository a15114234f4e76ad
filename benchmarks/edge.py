"""Edge benchmark: a PROJECTION of the projects that fit 8 GB, the memory measured here for what is real,
and the new-project time (sandbox only).

    python benchmarks/edge.py [--tmp /tmp]

Prints:
  * the projected number of projects that fit the default 8 GB budget with shared services, next to one full
    self-hosted Supabase stack per project. It is a projection, not a measurement: every constant it uses is
    printed with where it comes from (docker-stats medians in the reference notes, the settings' defaults,
    an estimate per Postgres backend);
  * measured here, on a throwaway PostgreSQL with one project applied by the engine: the memory of the idle
    backends of that project's database pools (as many connections as the platform renders for PostgREST,
    GoTrue and Storage), read from /proc (RSS and PSS), next to the projection's estimate per backend;
  * with --postgres-meta DIR (an npm install of @supabase/postgres-meta), the real postgres-meta's memory,
    started with node against the same database after two rounds of Studio-like requests; without it,
    the figure recorded in the settings and where it was measured;
  * a locally measured render time, and the new-project time only when a sandbox host is available;
    without one it says so and prints NA.
The host is shared with other work; memory figures are medians over a pool's backends. The last line is
machine-readable:
`new_project_s=<s or NA> projects_8gb_projected=<n> idle_backend_pss_mb=<median> postgres_meta_rss_mb=<n or NA>`.
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
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devkit.localdb.server import LocalPostgres, free_port  # noqa: E402
from devkit.sandbox.config import SandboxConfig  # noqa: E402
from devkit.sandbox.sandbox import SandboxError  # noqa: E402
from devkit.sandbox.sandbox import status as sandbox_status  # noqa: E402
from nextmavens.edge.inputs import EdgeProject  # noqa: E402
from nextmavens.edge.kong import render_kong  # noqa: E402
from nextmavens.edge.memory import (  # noqa: E402
    GOTRUE_POOL,
    POSTGRES_BACKEND_MB,
    POSTGREST_POOL,
    STORAGE_POOL,
    project_footprint,
    projects_that_fit,
    shared_services_total_mb,
)
from nextmavens.edge.nginx import render_nginx  # noqa: E402
from nextmavens.edge.services import render_project_services  # noqa: E402
from nextmavens.edge.settings import GOTRUE_MB, POSTGREST_MB, STORAGE_MB, EdgeSettings  # noqa: E402
from nextmavens.engine.session import Engine, EngineConfig  # noqa: E402
from nextmavens.host.edgeconfig import edge_settings  # noqa: E402
from nextmavens.host.hostdata import HostData, read_group_file  # noqa: E402
from nextmavens.keys import ProjectSecrets, issue_api_keys, new_jwt_secret, new_password  # noqa: E402
from nextmavens.manifest.loader import load_manifests  # noqa: E402
from nextmavens.manifest.models import ProjectManifest  # noqa: E402
from nextmavens.naming import project_names  # noqa: E402
from nextmavens.upstream.facts import pinned  # noqa: E402

# One full self-hosted Supabase stack: median MiB per container (trailbase docker.stats, reference section 8).
FULL_STACK_MEDIANS_MB = {
    "kong": 2444,
    "analytics": 2200,
    "db": 462,
    "realtime": 255,
    "vector": 189,
    "meta": 136,
    "studio": 133,
    "storage": 126,
    "rest": 121,
    "functions": 97,
    "imgproxy": 85,
    "auth": 34,
}
OFFICIAL_MINIMUM_MB = 4096  # Supabase's self-hosting docs: 4 GB RAM minimum per stack
POSTGRES_META_MEASURED_MB = pinned("postgres_meta").measured_rss_mb  # nextmavens/upstream/facts.py

SOURCES = [
    ("memory budget", "memory_budget_mb", "group_data/all.py (what the production deploy sets)"),
    (
        "shared services",
        "per service below",
        "memory_limits_mb in group_data/all.py: each shared service's compose limit",
    ),
    ("PostgREST", f"{POSTGREST_MB} MiB", "POSTGREST_MB, docker-stats median (reference section 8, rest 121 MiB)"),
    ("GoTrue", f"{GOTRUE_MB} MiB", "GOTRUE_MB, docker-stats median (reference section 8, auth 34 MiB)"),
    ("Storage", f"{STORAGE_MB} MiB", "STORAGE_MB, docker-stats median (reference section 8, storage 126 MiB)"),
    (
        "pools",
        f"PostgREST {POSTGREST_POOL}, GoTrue {GOTRUE_POOL}, Storage {STORAGE_POOL} connections",
        "nextmavens/edge/memory.py, rendered as PGRST_DB_POOL, GOTRUE_DB_MAX_POOL_SIZE, DATABASE_MAX_CONNECTIONS",
    ),
    (
        "one idle Postgres backend",
        f"{POSTGRES_BACKEND_MB} MiB",
        "POSTGRES_BACKEND_MB, an ESTIMATE (nextmavens/edge/memory.py); measured below",
    ),
    ("full stack medians", "per container", "trailbase docker.stats medians (reference supabase-multi-project.md §8)"),
    ("official minimum", f"{OFFICIAL_MINIMUM_MB} MiB", "Supabase's self-hosting documentation: 4 GB RAM"),
]


def production_settings() -> EdgeSettings:
    """The edge settings the production deploy renders from group_data/all.py (placeholder names)."""
    data = read_group_file(REPO / "group_data" / "all.py")
    data.update(
        api_domain="api.example.test",
        studio_domain="studio.example.test",
        admin_email="ops@example.test",
        admin_ssh_public_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench bench"],
        edge_host_ipv4="203.0.113.10",
    )
    return edge_settings(HostData.model_validate(data))


def sample(ref: str, storage: bool = False) -> EdgeProject:
    manifest = ProjectManifest.model_validate(
        {
            "ref": ref,
            "name": ref,
            "auth": {"site_url": f"https://{ref}.example"},
            "storage": {"enabled": storage},
        }
    )
    secret = new_jwt_secret()
    names = project_names(ref)
    secrets = ProjectSecrets(secret, issue_api_keys(secret), {r: new_password() for r in names.login_roles})
    return EdgeProject(manifest, secrets)


# Catalog reads close to what PostgREST's schema cache and GoTrue's start-up load: they fill the backend's
# catalog caches, which is most of an idle backend's private memory. (Approximations, not their exact SQL.)
WARM_POSTGREST = (
    "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE a.attnum > 0 AND NOT a.attisdropped",
    "SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid) FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint",
)
WARM_SIMPLE = ("SELECT count(*) FROM pg_class", "SELECT now()")


def smaps_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB of one process, from /proc/<pid>/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name.strip()] = int(rest.split()[0])
    return fields["Rss"] / 1024, fields["Pss"] / 1024


META_REQUESTS = (
    "/schemas",
    "/tables",
    "/columns",
    "/functions",
    "/types",
    "/roles",
    "/extensions",
    "/policies",
    "/generators/typescript",
)


def measure_postgres_meta(package: Path, server: LocalPostgres, database: str, log: Path) -> tuple[float, float]:
    """The real postgres-meta (an npm install of @supabase/postgres-meta; `package` is its folder) started
    with node against the project's database; each of META_REQUESTS sent twice (Studio's table editor and
    the TypeScript types); then the node process's (RSS, PSS) in MiB."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    port = free_port()
    url = f"postgresql://postgres:{quote(server.password, safe='')}@127.0.0.1:{server.port}/{database}?sslmode=disable"
    env = {"PATH": os.environ.get("PATH", ""), "PG_META_HOST": "127.0.0.1", "PG_META_PORT": str(port)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [node, str(package / "dist" / "server" / "server.js")],
            cwd=package,
            env=env | {"PG_META_DB_URL": url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/schemas", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres-meta did not answer: {log.read_text()[-500:]}") from None
                time.sleep(0.2)
        for _ in range(2):
            for path in META_REQUESTS:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60).read()
        time.sleep(1)
        return smaps_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure_idle_backends(
    tmp: Path, meta_package: Path | None
) -> tuple[dict[str, list[tuple[float, float]]] | None, tuple[float, float] | str]:
    """One project applied by the engine on a throwaway server; its pools' connections opened, warmed with
    catalog reads, left idle; each backend's RSS and PSS read from /proc (None when /proc is not readable).
    With `meta_package`, the real postgres-meta measured against the same database (else why not)."""
    base = Path(tempfile.mkdtemp(prefix="nextmavens-edge-bench-", dir=tmp))
    base.chmod(0o711)
    server = LocalPostgres(base=base / "server", fast=True)
    try:
        server.start()
        projects = base / "projects" / "bench"
        projects.mkdir(parents=True)
        ref = "membench"
        (projects / f"{ref}.yaml").write_text(
            yaml.safe_dump({"ref": ref, "name": "Memory", "auth": {"site_url": "https://membench.example"}})
        )
        engine = Engine(EngineConfig(dsn=server.dsn, master_key_path=base / "master.key", lock_timeout_s=60))
        engine.apply(load_manifests(base / "projects"))
        database = project_names(ref).database
        pools = {"PostgREST": (POSTGREST_POOL, WARM_POSTGREST), "GoTrue": (GOTRUE_POOL, WARM_SIMPLE)}
        pools["Storage (when enabled)"] = (STORAGE_POOL, WARM_SIMPLE)
        held: list[psycopg.Connection] = []
        found: dict[str, list[tuple[float, float]]] = {}
        meta: tuple[float, float] | str = "not measured (no --postgres-meta folder given)"
        if meta_package is not None:
            try:
                meta = measure_postgres_meta(meta_package, server, database, base / "postgres-meta.log")
            except (RuntimeError, OSError) as exc:
                meta = f"not measured ({exc})"
        try:
            for name, (size, warm) in pools.items():
                pids = []
                for _ in range(size):
                    conn = psycopg.connect(server.dsn_for(database), autocommit=True)
                    held.append(conn)
                    for query in warm:
                        conn.execute(query).fetchall()
                    row = conn.execute("SELECT pg_backend_pid()").fetchone()
                    assert row is not None
                    pids.append(int(row[0]))
                time.sleep(1)  # idle, as a pool's connections are between requests
                try:
                    found[name] = [smaps_mb(pid) for pid in pids]
                except PermissionError:
                    return None, meta
        finally:
            for conn in held:
                conn.close()
        return found, meta
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


NEW_PROJECT_SCRIPT = r"""
set -eu
W={platform_dir}/bin/nextmavens-env
P={projects_dir}
ref=bench$(date +%s | tail -c 6)
mkdir -p "$P/benchorg"
printf 'name: Benchmark\nmembers:\n  - email: bench@sandbox.test\n    role: owner\n' > "$P/benchorg/org.yaml"
printf 'ref: %s\nname: Benchmark %s\nstate: active\nauth:\n  site_url: https://%s.example\n' \
  "$ref" "$ref" "$ref" > "$P/benchorg/$ref.yaml"
t0=$(date +%s.%N)
"$W" nextmavens apply --projects "$P" --yes > /tmp/nm-bench-apply.log 2>&1 \
  || {{ tail -20 /tmp/nm-bench-apply.log >&2; exit 1; }}
key=$("$W" nextmavens keys show "benchorg/$ref" --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["anon_key"])')
code=000
for i in $(seq 600); do
  code=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' -H "Host: $ref.{api_domain}" -H "apikey: $key" \
    http://127.0.0.1/rest/v1/ || true)
  [ "$code" = 200 ] && break
  sleep 0.2
done
t1=$(date +%s.%N)
# leave the sandbox as the repository declares it: the project is removed (its containers stopped)
rm -rf "$P/benchorg"
"$W" nextmavens apply --projects "$P" --yes > /dev/null 2>&1 || true
[ "$code" = 200 ] || {{ echo "the new project never answered 200 (last: $code)" >&2; exit 1; }}
python3 -c "print(f'{{$t1 - $t0:.2f}}')"
"""


def _sandbox_env() -> dict[str, str] | None:
    """The running sandbox's connection settings: from the environment, else the sandbox's own status."""
    if os.environ.get("NEXTMAVENS_SANDBOX_HOST"):
        return dict(os.environ)
    try:
        state = sandbox_status(SandboxConfig.from_env())
    except (SandboxError, OSError, ValueError):
        return None
    return {**os.environ, **state["env"]} if state.get("running") and state.get("ssh_reachable") else None


def measure_new_project_s() -> float | None:
    """On a converged sandbox: a new manifest -> `nextmavens apply` (database, containers from local images,
    Kong load, nginx reload; no pulls, no ACME) -> the project answering 200 through nginx and Kong."""
    env = _sandbox_env()
    if env is None:
        return None
    data = runpy.run_path(str(REPO / "group_data" / "all.py"))
    data.update(runpy.run_path(str(REPO / "group_data" / "sandbox.py")))
    script = NEW_PROJECT_SCRIPT.format(
        platform_dir=data["platform_dir"], projects_dir=data["projects_dir"], api_domain=data["api_domain"]
    )
    ssh = [
        "ssh", "-i", env["NEXTMAVENS_SANDBOX_KEY"], "-p", env.get("NEXTMAVENS_SANDBOX_PORT", "22"),
        "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={env['NEXTMAVENS_SANDBOX_KNOWN_HOSTS']}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-T",
        f"root@{env['NEXTMAVENS_SANDBOX_HOST']}", "sh", "-s",
    ]  # fmt: skip
    proc = subprocess.run(ssh, input=script, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        print(f"new project: the sandbox measurement failed: {proc.stderr.strip()[-500:]}")
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def node_version() -> str:
    done = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the throwaway server goes")
    parser.add_argument(
        "--postgres-meta",
        type=Path,
        help="folder of an npm install of @supabase/postgres-meta (node_modules/@supabase/postgres-meta):"
        " measure the real one's memory here",
    )
    parser.add_argument("--no-sandbox", action="store_true", help="do not look for a sandbox host (new_project_s=NA)")
    args = parser.parse_args()
    settings = production_settings()
    budget_mb = settings.memory_budget_mb
    shared = shared_services_total_mb(settings)
    rest_auth = project_footprint(sample("probe").manifest).total_mb
    with_storage = project_footprint(sample("probe2", storage=True).manifest).total_mb
    full_stack = sum(FULL_STACK_MEDIANS_MB.values())
    fit_default = projects_that_fit(settings, rest_auth)
    fit_storage = projects_that_fit(settings, with_storage)

    print(f"the host is shared with other work (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print()
    print("== PROJECTION (from the constants below, not measured on a host running the platform) ==")
    print("where each constant comes from:")
    for name, value, source in SOURCES:
        print(f"  {name:26} {value:22} {source}")
    print(f"memory budget: {budget_mb} MiB")
    print(f"shared services (projection): {shared} MiB")
    for name, mb in sorted(settings.shared_services_mb.items()):
        print(f"  {name:16} {mb:5} MiB")
    print(
        f"per project, REST + Auth (+ their Postgres backends): {rest_auth} MiB -> {fit_default} projects (projected)"
    )
    print(f"per project, REST + Auth + Storage:                   {with_storage} MiB -> {fit_storage} (projected)")
    print(
        f"one full Supabase stack per project (measured medians): {full_stack} MiB -> "
        f"{budget_mb // full_stack} projects; at the official 4 GB minimum -> "
        f"{budget_mb // OFFICIAL_MINIMUM_MB}"
    )
    print()
    print("== MEASURED HERE ==")
    backends, meta = measure_idle_backends(args.tmp, args.postgres_meta)
    reserved = settings.shared_services_mb.get("postgres-meta", 0)
    if isinstance(meta, tuple):
        version = json.loads((args.postgres_meta / "package.json").read_text())["version"]
        print(
            f"postgres-meta {version} (the real one, node {node_version()}) after two rounds of"
            f" {len(META_REQUESTS)} requests against the project's database: RSS {meta[0]:.0f} MiB,"
            f" PSS {meta[1]:.0f} MiB; the settings reserve {reserved} MiB"
        )
    else:
        print(
            f"postgres-meta: {meta}; the settings reserve {reserved} MiB, from {POSTGRES_META_MEASURED_MB} MiB RSS"
            " measured earlier for the real 0.91.6 on Node 20 (nextmavens/upstream/facts.py)"
        )
    pss_median = float("nan")
    if backends is None:
        print("idle backends: not measured (/proc of the server's processes is not readable here)")
    else:
        print(
            "a project's idle pool connections in Postgres (one project applied by the engine on a throwaway"
            " PostgreSQL 15, default shared_buffers; each connection warmed with catalog reads, then idle):"
        )
        all_pss = []
        project_pss = 0.0
        for name, figures in backends.items():
            rss = [r for r, _ in figures]
            pss = [p for _, p in figures]
            all_pss += pss
            if not name.startswith("Storage"):
                project_pss += sum(pss)
            print(
                f"  {name:24} {len(figures)} backends: RSS median {statistics.median(rss):5.1f} MiB,"
                f" PSS median {statistics.median(pss):5.1f} MiB, PSS total {sum(pss):5.1f} MiB"
            )
        pss_median = statistics.median(all_pss)
        print(
            f"  REST + Auth pools together: {project_pss:.1f} MiB PSS; the projection counts"
            f" {(POSTGREST_POOL + GOTRUE_POOL) * POSTGRES_BACKEND_MB} MiB ({POSTGRES_BACKEND_MB} MiB per backend)"
        )
        print(
            "  PSS shares the pages a backend shares with the postmaster and other backends among them; RSS counts"
            " them in full. Private memory grows with the catalog a backend has read and the queries it has run."
        )

    projects = [sample(f"p{i:03d}", storage=i % 3 == 0) for i in range(fit_default)]
    started = time.perf_counter()
    kong = render_kong(settings, projects)
    render_nginx(settings, projects, set())
    for project in projects:
        render_project_services(settings, project.manifest, project.secrets)
    elapsed = time.perf_counter() - started
    print(
        f"render (measured here): Kong config with {len(kong.services)} services + nginx + "
        f"{len(projects)} compose files in {elapsed * 1000:.0f} ms"
    )

    new_project = None if args.no_sandbox else measure_new_project_s()
    if new_project is None:
        why = "--no-sandbox" if args.no_sandbox else "no converged sandbox host available"
        print(f"new project time: not measured ({why})")
    shown = "NA" if new_project is None else f"{new_project:.1f}"
    pss_shown = "NA" if pss_median != pss_median else f"{pss_median:.1f}"
    meta_shown = f"{meta[0]:.0f}" if isinstance(meta, tuple) else "NA"
    print(
        f"new_project_s={shown} projects_8gb_projected={fit_default} idle_backend_pss_mb={pss_shown}"
        f" postgres_meta_rss_mb={meta_shown}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
