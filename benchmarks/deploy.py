"""App deployment timings on the sandbox host (issue 16): a deploy, the requests that fail across its switch, and a
rollback.

Boots the sandbox and converges it (or, with --reuse, takes the running, converged one), declares a small Node app
(tests/fixtures/apps/node-hello) on the applied example project acme/shop in a copy of the host's manifests, and
deploys it once to warm the build (the base image is local; later builds reuse its layers). Then, while a load loop
runs in a second process on the host's loopback (GET through nginx on the app's name, one connection a request),
it deploys a new commit (`deploy_s`: the whole `nextmavens deploy`, build to drain), stops the loop
(`switch_failed_requests`: non-2xx answers and connection errors), and rolls back (`rollback_s`: from the start of
`nextmavens rollback` until nginx answers with the old release again, asked from the host every 50 ms; the
command's whole time, which then drains and stops the release it left, is printed above). Goals: rollback <= 5 s,
0 failed requests. The last line is machine-readable:

    deploy_s=<x> switch_failed_requests=<n> rollback_s=<x>

Run as root from the repository root: python benchmarks/deploy.py [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SANDBOX = [sys.executable, "-m", "devkit.sandbox.cli"]
PYINFRA = [sys.executable, "-c", "import sys; from pyinfra_cli.main import main; sys.exit(main())"]
WORK = "/root/nm-bench-apps"
NAME = "bench.apps.test"
ROLLBACK_GOAL_S = 5.0


def sandbox(*args: str) -> str:
    proc = subprocess.run([*SANDBOX, *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"sandbox {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


class Guest:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.argv = [
            "ssh", "-i", env["NEXTMAVENS_SANDBOX_KEY"], "-p", env["NEXTMAVENS_SANDBOX_PORT"],
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={env['NEXTMAVENS_SANDBOX_KNOWN_HOSTS']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-T",
            f"root@{env['NEXTMAVENS_SANDBOX_HOST']}",
        ]  # fmt: skip

    def run(self, command: str, data: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([*self.argv, "--", command], input=data, capture_output=True, timeout=1200)
        if check and proc.returncode != 0:
            output = proc.stdout.decode() + proc.stderr.decode()
            sys.exit(f"guest command failed ({proc.returncode}): {command}\n{output}")
        return proc

    def popen(self, command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.argv, "--", command], stdout=subprocess.PIPE)


def group_data(env: dict[str, str]) -> dict[str, Any]:
    old = dict(os.environ)
    os.environ.update(env)
    try:
        data: dict[str, Any] = {}
        for name in ("all", "sandbox"):
            module = runpy.run_path(str(REPO / "group_data" / f"{name}.py"))
            data.update({k: v for k, v in module.items() if not k.startswith("_") and not callable(v)})
    finally:
        os.environ.clear()
        os.environ.update(old)
    return data


def tar_of(folder: Path, *names: str) -> bytes:
    return subprocess.run(["tar", "-C", str(folder), "-cf", "-", *names], capture_output=True, check=True).stdout


def commit(guest: Guest, version: str) -> None:
    release = shlex.quote(json.dumps({"version": version, "healthy": True}))
    guest.run(
        f"cd {WORK}/app && echo {release} > release.json && git add -A && "
        f"git -c user.email=bench@example.invalid -c user.name=bench commit -qm {version}"
    )


def setup(guest: Guest, data: dict[str, Any]) -> tuple[str, str]:
    """(the CLI's prefix, the manifests copy) with the app declared."""
    python = f"{data['platform_dir']}/venv/bin/python"
    projects = f"{WORK}/projects"
    guest.run(f"rm -rf {WORK} && mkdir -p {WORK}/app {WORK}/support")
    guest.run(f"tar -C {WORK}/app -xf -", tar_of(REPO / "tests" / "fixtures" / "apps" / "node-hello", "."))
    guest.run(f"tar -C {WORK}/support -xf -", tar_of(REPO / "tests" / "support", "loadloop.py"))
    guest.run(f"cd {WORK}/app && git init -q")
    commit(guest, "v1")
    guest.run(f"cp -r {data['projects_dir']} {projects} && rm -rf {projects}/.git")
    app = {"apps": [{"name": "bench", "source": f"{WORK}/app", "health_path": "/health", "domains": [NAME]}]}
    script = (
        "import sys, yaml; p = sys.argv[1]; d = yaml.safe_load(open(p)); d.update(yaml.safe_load(sys.argv[2])); "
        "open(p, 'w').write(yaml.safe_dump(d, sort_keys=False))"
    )
    guest.run(f"{python} -c {shlex.quote(script)} {projects}/acme/shop.yaml {shlex.quote(json.dumps(app))}")
    return f"{data['platform_dir']}/bin/nextmavens-env nextmavens", projects


def timed(guest: Guest, command: str) -> float:
    t0 = time.monotonic()
    guest.run(command)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse", action="store_true", help="use the running, converged sandbox (no fresh guest)")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    args = ap.parse_args()
    if not args.reuse:
        sandbox("down")
    exports = sandbox("up", "--env-only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_PROD_")}
    for line in exports.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0]
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    guest = Guest(env)
    try:
        if not args.reuse:
            proc = subprocess.run(
                [*PYINFRA, "-y", "inventory.py", "deploys/site.py"], cwd=REPO, env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                sys.exit("converge failed:\n" + "\n".join(proc.stderr.splitlines()[-40:]))
        data = group_data(env)
        cli, projects = setup(guest, data)
        python = f"{data['platform_dir']}/venv/bin/python"
        first_s = timed(guest, f"{cli} deploy acme/shop bench --projects {projects}")  # warms the build
        commit(guest, "v2")
        loop = guest.popen(f"rm -f {WORK}/stop; {python} {WORK}/support/loadloop.py 80 {NAME} / {WORK}/stop 600")
        time.sleep(2)
        deploy_s = timed(guest, f"{cli} deploy acme/shop bench --projects {projects}")
        time.sleep(1)
        guest.run(f"touch {WORK}/stop")
        out, _ = loop.communicate(timeout=120)
        load = json.loads(out.decode().strip().splitlines()[-1])
        # On the host itself: the rollback in the background, and a client asking nginx until v1 answers again.
        script = (
            f"t0=$(date +%s%N); ({cli} rollback acme/shop bench --projects {projects} > {WORK}/rollback.log 2>&1; "
            f"echo $? > {WORK}/rollback.rc) & "
            f"until curl -s -m 2 -H 'Host: {NAME}' http://127.0.0.1/ | grep -q '\"version\":\"v1\"'; do sleep 0.05; "
            f"done; t1=$(date +%s%N); wait; t2=$(date +%s%N); "
            f"echo $(( (t1 - t0) / 1000000 )) $(( (t2 - t0) / 1000000 )) $(cat {WORK}/rollback.rc)"
        )
        served_ms, done_ms, code = guest.run(script).stdout.decode().split()
        if code != "0":
            sys.exit("the rollback failed:\n" + guest.run(f"cat {WORK}/rollback.log").stdout.decode())
        rollback_s, rollback_command_s = int(served_ms) / 1000, int(done_ms) / 1000
    finally:
        if not args.keep:
            sandbox("down")
    print(f"first deploy (cold build): {first_s:.1f}s")
    print(f"deploy of a new commit: {deploy_s:.1f}s (build, health, switch, {data['app_deploys']['drain_s']}s drain)")
    print(f"load loop across the switch: {load['ok']} ok, {load['failed']} failed {load['statuses']} {load['errors']}")
    print(f"rollback: v1 served again after {rollback_s:.1f}s (goal <= {ROLLBACK_GOAL_S:.0f}s); the command took "
          f"{rollback_command_s:.1f}s (it then drains and stops the release it left)")
    print(f"deploy_s={deploy_s:.1f} switch_failed_requests={load['failed']} rollback_s={rollback_s:.1f}")


if __name__ == "__main__":
    main()
