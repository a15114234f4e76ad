"""Edge benchmark: projects that fit 8 GB (projection) and the new-project time (sandbox only).

    python benchmarks/edge.py

Prints the projected number of projects that fit the default 8 GB budget with shared services next to one
full self-hosted Supabase stack per project (medians from reference/supabase-multi-project.md section 8),
a locally measured render time, and the new-project time only when a sandbox host is available; without one
it says so and prints NA. The last line is machine-readable:
`new_project_s=<seconds or NA> projects_8gb=<n>`.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nextmavens.edge.inputs import EdgeProject  # noqa: E402
from nextmavens.edge.kong import render_kong  # noqa: E402
from nextmavens.edge.memory import project_footprint, projects_that_fit, shared_services_mb  # noqa: E402
from nextmavens.edge.nginx import render_nginx  # noqa: E402
from nextmavens.edge.services import render_project_services  # noqa: E402
from nextmavens.edge.settings import EdgeSettings  # noqa: E402
from nextmavens.keys import ProjectSecrets, issue_api_keys, new_jwt_secret, new_password  # noqa: E402
from nextmavens.manifest.models import ProjectManifest  # noqa: E402
from nextmavens.naming import project_names  # noqa: E402

BUDGET_MB = 8192
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
    """The running sandbox's connection settings: from the environment, else `nextmavens sandbox status`."""
    if os.environ.get("NEXTMAVENS_SANDBOX_HOST"):
        return dict(os.environ)
    status = subprocess.run(
        [sys.executable, "-m", "nextmavens.sandbox.cli", "status", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        state = json.loads(status.stdout)
    except ValueError:
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


def main() -> int:
    settings = EdgeSettings(
        api_domain="api.example.test",
        studio_domain="studio.example.test",
        host_ipv4="203.0.113.10",
        memory_budget_mb=BUDGET_MB,
    )
    shared = shared_services_mb(settings)
    rest_auth = project_footprint(sample("probe").manifest).total_mb
    with_storage = project_footprint(sample("probe2", storage=True).manifest).total_mb
    full_stack = sum(FULL_STACK_MEDIANS_MB.values())
    fit_default = projects_that_fit(settings, rest_auth)
    fit_storage = projects_that_fit(settings, with_storage)

    print(f"memory budget: {BUDGET_MB} MiB")
    print(f"shared services (projection): {shared} MiB")
    for name, mb in sorted(settings.shared_services_mb.items()):
        print(f"  {name:16} {mb:5} MiB")
    print(f"per project, REST + Auth (+ their Postgres backends): {rest_auth} MiB -> {fit_default} projects")
    print(f"per project, REST + Auth + Storage:                   {with_storage} MiB -> {fit_storage} projects")
    print(
        f"one full Supabase stack per project (measured medians): {full_stack} MiB -> "
        f"{BUDGET_MB // full_stack} projects; at the official 4 GB minimum -> "
        f"{BUDGET_MB // OFFICIAL_MINIMUM_MB}"
    )
    print("(projections from docker-stats medians; measure on the target VPS)")

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

    new_project = measure_new_project_s()
    if new_project is None:
        print("new project time: not measured (no converged sandbox host available)")
    shown = "NA" if new_project is None else f"{new_project:.1f}"
    print(f"new_project_s={shown} projects_8gb={fit_default}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
