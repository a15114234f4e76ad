"""End-to-end: app deployments on the booted sandbox host with its real Docker engine and nginx (issue 16).

The host is converged from this tree first when nothing converged it yet (the module's own fixture). The
file's name sorts after test_sandbox.py, so in a whole session the upgrade from the previous release, and the
converge, are test_sandbox.py's. The apps are declared in a copy of the host's manifests (`--projects`), on the applied
example project acme/shop, so the host's own manifest repository is never touched. A Node app (a host path's
git commit) and a Python app (an uploaded `git archive`) are built on the sandbox's Debian-packaged base
(devkit/sandbox/images/app) and reached through nginx on their names; a second deploy under a load loop in a
second process on the host's loopback fails no request; an unhealthy release never takes traffic; rollback;
the secret reaches the app's environment and is absent from `docker inspect`, logs, output and git; a preview
of the Node app answers through nginx on its own name and is removed; a stopped active release is started again
by the apps' reconcile.

`E2E_APPS_OVERLAY=1` runs the host's commands with this tree's `nextmavens/` first on PYTHONPATH (copied to the
guest), for trying a branch on the shared sandbox without converging it; by default the installed code runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, Sandbox
from .test_sandbox import converge, group_data

pytestmark = pytest.mark.e2e

WORK = "/root/nm-e2e-apps"
NODE_NAME = "node-hello.apps.test"
PY_NAME = "python-hello.apps.test"
SECRET = "e2e-secret-" + hashlib.sha256(b"nm-e2e-apps").hexdigest()[:20]
FIXTURES = REPO / "tests" / "fixtures" / "apps"


@pytest.fixture(scope="module")
def host_data(sandbox: Sandbox) -> dict[str, Any]:
    data = group_data(sandbox)
    # Converged already in a whole session (test_sandbox.py, whose platform-service writes a re-converge would
    # rightly refuse to publish over); alone, this module converges the fresh guest itself.
    if sandbox.run(f"test -e {shlex.quote(data['platform_dir'])}/venv").returncode != 0:
        converge(sandbox)
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env nextmavens"
    projects = f"{WORK}/projects"
    sandbox.check(f"rm -rf {WORK} && mkdir -p {WORK}")
    _copy_dir(sandbox, FIXTURES, WORK)
    _copy_dir(sandbox, REPO / "tests" / "support", f"{WORK}/support", only=("loadloop.py",))
    # the host's manifests, copied; acme/shop (applied) gets the two apps
    sandbox.check(f"cp -r {data['projects_dir']} {projects} && rm -rf {projects}/.git")
    shop = f"{projects}/acme/shop.yaml"
    apps = {
        "apps": [
            {
                "name": "node",
                "source": f"{WORK}/node-hello",
                "port": 3000,
                "health_path": "/health",
                "env": {"MODE": "e2e"},
                "secrets": ["API_KEY"],
                "domains": [NODE_NAME],
                "memory_mb": 128,
                "retain": 2,
            },
            {"name": "py", "port": 8000, "health_path": "/health", "domains": [PY_NAME], "memory_mb": 128},
        ]
    }
    script = (
        "import sys, yaml; p = sys.argv[1]; d = yaml.safe_load(open(p)); d.update(yaml.safe_load(sys.argv[2])); "
        "open(p, 'w').write(yaml.safe_dump(d, sort_keys=False))"
    )
    python = f"{data['platform_dir']}/venv/bin/python"
    sandbox.check(f"{python} -c {shlex.quote(script)} {shop} {shlex.quote(json.dumps(apps))}")
    sandbox.check(
        f"cd {WORK}/node-hello && git init -q && git add -A && "
        "git -c user.email=e2e@example.invalid -c user.name=e2e commit -qm v1"
    )
    if os.environ.get("E2E_APPS_OVERLAY") == "1":
        _copy_dir(sandbox, REPO / "nextmavens", f"{WORK}/overlay/nextmavens")
        wrapper = f"env PYTHONPATH={WORK}/overlay {wrapper}"
    return {"data": data, "cli": f"{wrapper}", "projects": projects}


def _copy_dir(sandbox: Sandbox, source: Path, target: str, only: tuple[str, ...] = ()) -> None:
    names = list(only) if only else ["."]
    tar = subprocess.run(["tar", "-C", str(source), "-cf", "-", *names], capture_output=True, check=True).stdout
    proc = subprocess.run(
        [*sandbox.ssh_argv(), "--", f"mkdir -p {target} && tar -C {target} -xf -"], input=tar, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr


def _cli(
    sandbox: Sandbox, env: dict[str, Any], args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = f"{env['cli']} {args} --projects {env['projects']}"
    return subprocess.run(
        [*sandbox.ssh_argv(), "--", command], input=stdin, capture_output=True, text=True, timeout=900
    )


def _get(sandbox: Sandbox, name: str, path: str = "/") -> tuple[int, str]:
    out = sandbox.check(
        f"curl -sS -m 10 -o /tmp/nm-e2e-body -w '%{{http_code}}' -H 'Host: {name}' "
        f"http://127.0.0.1{path}; echo; cat /tmp/nm-e2e-body"
    )
    status, _, body = out.partition("\n")
    return int(status or 0), body


def _served(sandbox: Sandbox, name: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    last: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        last = _get(sandbox, name)
        if last[0] == 200 and json.loads(last[1]).get("version") == version:
            return dict(json.loads(last[1]))
        time.sleep(0.3)
    raise AssertionError(f"{name} does not serve {version}: {last}")


def _commit_release(sandbox: Sandbox, version: str, healthy: bool = True) -> None:
    release = json.dumps({"version": version, "healthy": healthy})
    sandbox.check(
        f"cd {WORK}/node-hello && echo {shlex.quote(release)} > release.json && "
        f"git -c user.email=e2e@example.invalid -c user.name=e2e commit -qam {version}"
    )


def test_a_node_app_with_a_secret_deploys_and_answers_through_nginx(sandbox: Sandbox, host_data) -> None:
    stored = _cli(sandbox, host_data, "secrets set acme/shop node API_KEY", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    deployed = _cli(sandbox, host_data, "deploy acme/shop node")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "build: node (package.json start script)" in deployed.stdout
    assert "start: node server.js" in deployed.stdout
    answer = _served(sandbox, NODE_NAME, "v1")
    assert answer["mode"] == "e2e"
    # the secret is in the app's environment ...
    status, body = _get(sandbox, NODE_NAME, "/secret")
    assert status == 200 and json.loads(body) == {"set": True, "sha256": hashlib.sha256(SECRET.encode()).hexdigest()}
    # ... and nowhere else: docker inspect, the container's log, the deploy's output, git, the manifests
    container = "nm-app-shop--node-r1"
    inspect = sandbox.check(f"docker inspect {container}")
    assert SECRET not in inspect and '"Memory": 134217728' in inspect
    assert '"HostIp": "127.0.0.1"' in inspect
    # tenant code runs on its project's own network, never on the platform's shared one
    networks = json.loads(sandbox.check(f"docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {container}"))
    assert list(networks) == ["nextmavens-apps-shop"], networks
    assert SECRET not in sandbox.check(f"docker logs {container} 2>&1")
    assert SECRET not in deployed.stdout + deployed.stderr + stored.stdout + stored.stderr
    leaks = sandbox.run(
        f"grep -rl {shlex.quote(SECRET)} {WORK} {host_data['projects']}; "
        f"cd {WORK}/node-hello && git log -p | grep -c {shlex.quote(SECRET)}"
    )
    assert leaks.stdout.strip() == "0", leaks.stdout
    mode = sandbox.check("stat -c '%a %u' /var/lib/nextmavens/app-secrets/shop/node/r1.env").split()
    assert mode == ["600", "10001"], mode
    listed = _cli(sandbox, host_data, "releases acme/shop node --json")
    assert json.loads(listed.stdout)["releases"][0]["state"] == "active", listed.stdout


def test_a_python_app_deploys_from_an_uploaded_git_archive(sandbox: Sandbox, host_data, tmp_path: Path) -> None:
    repo = tmp_path / "py"
    subprocess.run(["cp", "-r", str(FIXTURES / "python-hello"), str(repo)], check=True)
    identity = ["-c", "user.email=e2e@example.invalid", "-c", "user.name=e2e"]
    for args in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "py"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=repo, check=True, capture_output=True).stdout
    proc = subprocess.run([*sandbox.ssh_argv(), "--", f"cat > {WORK}/py.tar"], input=archive, capture_output=True)
    assert proc.returncode == 0
    deployed = _cli(sandbox, host_data, f"deploy acme/shop py --archive {WORK}/py.tar")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "build: python (Flask in app.py, served by gunicorn)" in deployed.stdout
    assert _served(sandbox, PY_NAME, "py-v1")["app"] == "python-hello"


def test_a_second_deploy_under_load_fails_no_request(sandbox: Sandbox, host_data) -> None:
    _commit_release(sandbox, "v2")
    python = f"{host_data['data']['platform_dir']}/venv/bin/python"
    command = f"rm -f {WORK}/stop; {python} {WORK}/support/loadloop.py 80 {NODE_NAME} / {WORK}/stop 300 100000"
    loop = subprocess.Popen([*sandbox.ssh_argv(), "--", command], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        deployed = _cli(sandbox, host_data, "deploy acme/shop node")
        time.sleep(1)
    finally:
        sandbox.check(f"touch {WORK}/stop")
        out, _ = loop.communicate(timeout=60)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    result = json.loads(out.strip().splitlines()[-1])
    assert result["failed"] == 0 and result["ok"] > 50, result
    _served(sandbox, NODE_NAME, "v2")
    assert sandbox.check("docker inspect -f '{{.State.Status}}' nm-app-shop--node-r1").strip() == "exited"


def test_an_unhealthy_release_never_takes_traffic(sandbox: Sandbox, host_data) -> None:
    _commit_release(sandbox, "v3", healthy=False)
    failed = _cli(sandbox, host_data, "deploy acme/shop node")
    assert failed.returncode == 1 and "never answered /health with 2xx" in failed.stderr, failed.stdout + failed.stderr
    _served(sandbox, NODE_NAME, "v2")
    assert sandbox.run("docker inspect nm-app-shop--node-r3").returncode != 0  # stopped and removed
    _commit_release(sandbox, "v4")


def test_rollback_switches_back_in_seconds_without_a_build(sandbox: Sandbox, host_data) -> None:
    t0 = time.monotonic()
    back = _cli(sandbox, host_data, "rollback acme/shop node")
    elapsed = time.monotonic() - t0
    assert back.returncode == 0, back.stdout + back.stderr
    assert "building" not in back.stdout and elapsed < 30, (elapsed, back.stdout)
    _served(sandbox, NODE_NAME, "v1")
    status, body = _get(sandbox, NODE_NAME, "/secret")
    assert json.loads(body)["set"] is True
    listed = json.loads(_cli(sandbox, host_data, "releases acme/shop node --json").stdout)["releases"]
    states = {r["release"]: r["state"] for r in listed}
    assert states == {1: "active", 2: "previous"}, states


def test_a_preview_answers_on_its_own_name_and_is_removed(sandbox: Sandbox, host_data) -> None:
    """Self-contained (the secret set again): a preview needs no release of the app's own."""
    preview_name = f"pr-1.{NODE_NAME}"
    stored = _cli(sandbox, host_data, "secrets set acme/shop node API_KEY", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    deployed = _cli(sandbox, host_data, "deploy acme/shop node --preview pr-1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"switched: {preview_name} -> release" in deployed.stdout
    answer = _served(sandbox, preview_name, json.loads(sandbox.check(f"cat {WORK}/node-hello/release.json"))["version"])
    assert answer["mode"] == "e2e"
    listed = json.loads(_cli(sandbox, host_data, "releases acme/shop node --json").stdout)["releases"]
    (row,) = [r for r in listed if r["state"] == "preview"]
    assert row["preview"] == "pr-1"
    container = f"nm-app-shop--node-r{row['release']}"
    labels = json.loads(sandbox.check(f"docker inspect -f '{{{{json .Config.Labels}}}}' {container}"))
    assert labels["io.nextmavens.preview"] == "pr-1"
    conf = "/etc/nginx/conf.d/nextmavens-app-shop--node--preview-pr-1.conf"
    assert f"server_name {preview_name};" in sandbox.check(f"cat {conf}")

    bad = _cli(sandbox, host_data, "deploy acme/shop node --preview 'x;y'")
    assert bad.returncode != 0 and "preview name" in bad.stderr

    removed = _cli(sandbox, host_data, "deploy acme/shop node --remove-preview pr-1")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert sandbox.run(f"docker inspect {container}").returncode != 0
    assert sandbox.run(f"test -e {conf}").returncode != 0
    deadline = time.monotonic() + 20
    while _get(sandbox, preview_name)[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    status, body = _get(sandbox, preview_name)
    assert status != 200 or "version" not in body, (status, body)


def test_reconcile_starts_a_stopped_active_release_on_the_real_engine(sandbox: Sandbox, host_data) -> None:
    """Self-contained: the Node app deployed, its active container stopped (as `docker stop` or a crash the
    restart policy gave up on leaves it), then the apps' part of the edge's apply (apps/reconcile.py, through the
    host's edge settings and Docker) starts it again, it passes the health check and nginx serves it."""
    stored = _cli(sandbox, host_data, "secrets set acme/shop node API_KEY", stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    deployed = _cli(sandbox, host_data, "deploy acme/shop node")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    listed = json.loads(_cli(sandbox, host_data, "releases acme/shop node --json").stdout)["releases"]
    (active,) = [r for r in listed if r["state"] == "active"]
    container = f"nm-app-shop--node-r{active['release']}"
    sandbox.check(f"docker stop -t 1 {container}")
    script = (
        "import json, os, sys\n"
        "from nextmavens.apps.reconcile import host_apps\n"
        "from nextmavens.edge.inputs import EdgeProject\n"
        "from nextmavens.edge.step import load_edge\n"
        "from nextmavens.manifest.loader import load_manifests\n"
        "from pathlib import Path\n"
        "host = load_edge(Path(os.environ['NEXTMAVENS_EDGE_CONFIG']))\n"
        "loaded = load_manifests(Path(sys.argv[1])).by_key('acme/shop')\n"
        "project = EdgeProject(loaded.manifest, None, org='acme')\n"  # the apps' step reads no secret
        "report = host_apps(host).reconcile([project])\n"
        "print(json.dumps({'done': report.done, 'warnings': report.warnings, 'errors': report.errors}))\n"
    )
    python = f"{host_data['data']['platform_dir']}/venv/bin/python"
    wrapper = host_data["cli"].rsplit(" ", 1)[0]  # the env wrapper (and the overlay), without `nextmavens`
    out = sandbox.check(f"{wrapper} {python} -c {shlex.quote(script)} {host_data['projects']}")
    report = json.loads(out.strip().splitlines()[-1])
    assert report["errors"] == [], report
    assert f"acme/shop node: release {active['release']} was not running; started again" in report["done"], report
    assert sandbox.check(f"docker inspect -f '{{{{.State.Status}}}}' {container}").strip() == "running"
    _served(sandbox, NODE_NAME, json.loads(sandbox.check(f"cat {WORK}/node-hello/release.json"))["version"])
