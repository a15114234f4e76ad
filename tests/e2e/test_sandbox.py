"""End-to-end: the booted sandbox host, then the whole deploy against it.

Order matters and is the file's order: the guest itself, the first converge, the second converge (zero
changes), verification on the host with pytest-testinfra, then break things and converge again.
Run: pytest -m e2e tests/e2e -x  (as root; needs debootstrap, systemd-container, tinyproxy).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from . import upgrade
from .conftest import REPO, Sandbox

pytestmark = pytest.mark.e2e

LOCAL_IMAGES = ("nextmavens-local/postgres:15", "nextmavens-local/redis:7", "nextmavens-local/standin:1")
CONVERGE_TIMEOUT_S = 1500
# pyinfra's console entry point, from the interpreter running the tests
PYINFRA = [sys.executable, "-c", "import sys; from pyinfra_cli.main import main; sys.exit(main())"]


# --- the guest --------------------------------------------------------------------------------------------
def test_sandbox_up_is_idempotent_and_reports(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    again = subprocess.run(
        [sys.executable, "-m", "devkit.sandbox.cli", "up"], cwd=REPO, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert time.monotonic() - t0 < 30
    status = subprocess.run(
        [sys.executable, "-m", "devkit.sandbox.cli", "status", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    st = json.loads(status.stdout)
    assert st["running"] and st["ssh_reachable"] and st["docker"] == "active"
    assert all(st["local_images"].values()), st["local_images"]
    key_mode = os.stat(sandbox.key).st_mode & 0o777
    assert key_mode == 0o600, oct(key_mode)


def test_guest_systemd_running(sandbox: Sandbox) -> None:
    state = sandbox.run("systemctl is-system-running --wait", timeout=120).stdout.strip()
    failed = sandbox.run("systemctl --failed --no-legend --plain").stdout
    assert state == "running", f"systemd is {state!r}; failed units:\n{failed}"
    assert sandbox.check(". /etc/os-release && echo $VERSION_CODENAME").strip() == "trixie"


def test_guest_network_reaches_only_the_proxy(sandbox: Sandbox) -> None:
    routes = sandbox.check("ip -4 route show; ip -6 route show")
    assert "default" not in routes, routes
    assert sandbox.check("cat /etc/resolv.conf").strip() == ""
    # nothing resolves and nothing is routed; only the proxy on the host end of the veth answers
    direct = sandbox.run("curl -sS -m 5 -o /dev/null http://deb.debian.org/debian/")
    assert direct.returncode != 0
    outside = sandbox.run(f"curl -sS -m 10 -o /dev/null -w '%{{http_code}}' -x {sandbox.proxy} http://example.com/")
    assert outside.stdout.strip() == "403", outside.stdout + outside.stderr
    sandbox.check("apt-get update -q", timeout=300)


def test_sshd_reachable_on_the_guest_address(sandbox: Sandbox) -> None:
    import socket

    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as s:
        assert s.recv(64).startswith(b"SSH-2.0-")
    assert ipaddress.ip_address(sandbox.host).is_private


def test_docker_runs_local_images_on_loopback_only(sandbox: Sandbox) -> None:
    sandbox.check("systemctl is-active docker")
    images = sandbox.check("docker image ls --format '{{.Repository}}:{{.Tag}}'").split()
    for ref in LOCAL_IMAGES:
        assert ref in images, images
    sandbox.run("docker rm -f e2e-standin e2e-pg e2e-redis >/dev/null 2>&1")
    try:
        sandbox.check(
            "docker run -d --name e2e-standin -e STANDIN_PORTS=8000 -p 127.0.0.1:18000:8000 nextmavens-local/standin:1"
        )
        sandbox.check(
            "docker run -d --name e2e-pg -e POSTGRES_PASSWORD=e2e-pw -p 127.0.0.1:15432:5432 "
            "nextmavens-local/postgres:15"
        )
        sandbox.check("docker run -d --name e2e-redis -e REDIS_PASSWORD=e2e-rpw nextmavens-local/redis:7")
        body = sandbox.check("for i in $(seq 50); do curl -fsS 127.0.0.1:18000/health && break; sleep 0.2; done")
        assert json.loads(body)["status"] == "ok"
        listeners = sandbox.check("ss -ltnH 'sport = :18000'")
        local_addrs = {line.split()[3] for line in listeners.splitlines()}
        assert local_addrs == {"127.0.0.1:18000"}, listeners
        sandbox.check(
            "for i in $(seq 60); do docker exec e2e-pg pg_isready -h 127.0.0.1 -q && exit 0; sleep 0.5; done; exit 1"
        )
        pg = sandbox.check(
            "docker exec -e PGPASSWORD=e2e-pw e2e-pg psql -h 127.0.0.1 -U postgres -tAc 'show wal_level'"
        )
        assert pg.strip() == "logical"
        wrong = sandbox.run("docker exec -e PGPASSWORD=wrong e2e-pg psql -h 127.0.0.1 -U postgres -tAc 'select 1'")
        assert wrong.returncode != 0
        pong = sandbox.check(
            "for i in $(seq 30); do docker exec e2e-redis redis-cli -a e2e-rpw --no-auth-warning ping"
            " && exit 0; sleep 0.3; done; exit 1"
        )
        assert "PONG" in pong
        noauth = sandbox.run("docker exec e2e-redis redis-cli ping").stdout
        assert "NOAUTH" in noauth
    finally:
        sandbox.run("docker rm -f e2e-standin e2e-pg e2e-redis >/dev/null 2>&1")
    # the port published on loopback is not reachable from outside the guest
    import socket

    with pytest.raises(OSError):
        socket.create_connection((sandbox.host, 18000), timeout=3).close()


# --- the deploy ---------------------------------------------------------------------------------------------
def deploy_env(sandbox: Sandbox, root: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_PROD_")}
    env.update(sandbox.env)
    # `root`'s own nextmavens package first: the previous release's deploy runs with its own code
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def converge(sandbox: Sandbox, root: Path = REPO, pull_host_commits: bool = False) -> dict[str, Any]:
    """Run `root`'s deploy (this tree, or a worktree of the previous release) against the sandbox.
    `pull_host_commits`: when the deploy refuses because the platform service committed on the host (a project
    created through it), run the pull it prints in the operator's repository, as the operator would, and deploy
    again (the modules that converge after test_sandbox.py's service writes)."""
    for path in ("inventory.py", "deploys/site.py"):
        assert (root / path).is_file(), f"{path} is missing: the deploy has not landed"
    argv = [*PYINFRA, "-y", "-vv", "--json", "inventory.py", "deploys/site.py"]
    t0 = time.monotonic()
    proc = subprocess.run(
        argv, cwd=root, env=deploy_env(sandbox, root), capture_output=True, text=True, timeout=CONVERGE_TIMEOUT_S
    )
    if proc.returncode != 0 and pull_host_commits and "has commits that" in proc.stderr:
        _pull_as_printed(sandbox, proc.stderr)
        proc = subprocess.run(
            argv, cwd=root, env=deploy_env(sandbox, root), capture_output=True, text=True, timeout=CONVERGE_TIMEOUT_S
        )
    elapsed = time.monotonic() - t0
    tail = "\n".join(proc.stderr.splitlines()[-60:])
    assert proc.returncode == 0, f"converge failed ({proc.returncode}) after {elapsed:.0f}s:\n{tail}"
    result = json.loads(proc.stdout)
    ops = result["results"]["operations"]
    errors = [op["name"] for op in ops if op["error"]]
    assert not errors, f"operations failed: {errors}\n{tail}"
    changed = [op["name"] for op in ops if op["success"]]
    remote = sum(1 for line in proc.stderr.splitlines() if ">>>" in line)
    return {
        "seconds": elapsed,
        "changed": changed,
        "ops": len(ops),
        "remote_commands": remote,
        "log": proc.stderr,
    }


def _pull_as_printed(sandbox: Sandbox, output: str) -> None:
    """Run the `git pull ...` a refused deploy printed, in the operator's manifest repository (fast-forward only)."""
    pull = next(line.strip() for line in output.splitlines() if line.strip().startswith("git pull "))
    ssh = " ".join(sandbox.ssh_argv(group_data(sandbox)["admin_user"])[:-2])  # without -T and the destination
    pulled = subprocess.run(
        ["sh", "-c", pull.replace("git pull ", "git pull --quiet --ff-only ", 1)],
        cwd=sandbox.env["NEXTMAVENS_SANDBOX_MANIFESTS"],
        env={**os.environ, "GIT_SSH_COMMAND": ssh},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr


@pytest.fixture(scope="module")
def converged(sandbox: Sandbox) -> dict[str, Any]:
    """The previous release's converge of the fresh guest (tests/e2e/upgrade.py), then this tree's: the first
    one upgrades the host, the second finds nothing to change."""
    previous = upgrade.converge_previous_release(sandbox, group_data(sandbox)["platform_dir"], converge)
    first = converge(sandbox)
    second = converge(sandbox)
    sys.stderr.write(
        (f"\nprevious release: {previous.problem}" if previous.problem else
         f"\nprevious release: {previous.seconds:.0f}s ({len(previous.changed)} changed)")
        + f"\nconverge: first {first['seconds']:.0f}s ({len(first['changed'])} changed of {first['ops']}), "
        f"second {second['seconds']:.0f}s ({len(second['changed'])} changed, "
        f"{second['remote_commands']} remote commands)\n"
    )  # fmt: skip
    return {"previous": previous, "first": first, "second": second}


def group_data(sandbox: Sandbox) -> dict[str, Any]:
    """all.py overridden by sandbox.py, the way pyinfra merges group data for the sandbox host."""
    old = dict(os.environ)
    os.environ.update(sandbox.env)
    try:
        data: dict[str, Any] = {}
        for name in ("all", "sandbox"):
            mod = runpy.run_path(str(REPO / "group_data" / f"{name}.py"))
            data.update({k: v for k, v in mod.items() if not k.startswith("_") and not callable(v)})
    finally:
        os.environ.clear()
        os.environ.update(old)
    return data


@pytest.fixture(scope="module")
def data(sandbox: Sandbox) -> dict[str, Any]:
    return group_data(sandbox)


@pytest.fixture(scope="module")
def host(sandbox: Sandbox, converged: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    testinfra = pytest.importorskip("testinfra")
    cfg = sandbox.ssh_config(tmp_path_factory.mktemp("ssh") / "config")
    return testinfra.get_host("ssh://sandbox", ssh_config=str(cfg))


def test_first_converge_changes_the_host(converged: dict[str, Any]) -> None:
    assert converged["first"]["changed"], "the first converge on a fresh guest changed nothing"


def test_second_converge_changes_nothing(converged: dict[str, Any]) -> None:
    second = converged["second"]
    assert second["changed"] == [], f"second converge changed: {second['changed']}"


def test_upgrade_from_the_previous_release_leaves_nothing_stale(
    sandbox: Sandbox, converged: dict[str, Any], data: dict[str, Any]
) -> None:
    """The guest was converged by the previous release first (tests/e2e/upgrade.py), so the converges above
    upgraded it with no manual step: nothing the old release installed lingers, and what it created stays."""
    previous = converged["previous"]
    # A shallow clone has no history to upgrade from (said as the skip's reason, like the suite's other skips
    # for what this machine lacks); a full clone without the release fails: its history was rewritten.
    if previous.reused or previous.shallow:
        pytest.skip(previous.problem)
    assert not previous.problem, previous.problem
    assert previous.changed, "the previous release's converge changed nothing on the fresh guest"
    # the venv holds this tree's modules only (the old wheel had the workshop and modules since removed)
    venv = f"{data['platform_dir']}/venv"
    installed, shipped = upgrade.installed_modules(sandbox, venv), upgrade.package_files()
    assert installed == shipped, f"stale: {sorted(installed - shipped)}; missing: {sorted(shipped - installed)}"
    # one wheel uploaded, this tree's; units rewritten by the upgrade are the ones systemd runs
    wheels = sandbox.check(f"ls {data['platform_dir']}/dist/*.whl").split()
    assert len(wheels) == 1, wheels
    # the venv is this tree's build, switched to through its symlink; the previous release's build is kept
    # beside it, to go back to, and nothing older
    assert sandbox.run(f"test -L {venv}").returncode == 0
    assert "include-system-site-packages = false" in sandbox.check(f"cat {venv}/pyvenv.cfg")
    current = sandbox.check(f"readlink -f {venv}").strip()
    builds = sandbox.check(f"ls -d {data['platform_dir']}/venvs/*").split()
    assert current in builds and len(builds) == 2, builds
    assert upgrade.units_needing_reload(sandbox) == []
    declared = {f"nextmavens-{t['name']}.{kind}" for t in data["timers"] for kind in ("service", "timer")}
    assert upgrade.job_units(sandbox) == declared
    # the control database is at this tree's migrations, with the old release's rows kept
    from nextmavens.control.db import migration_files
    from nextmavens.naming import CONTROL_DATABASE

    recorded = _psql_lines(sandbox, data, CONTROL_DATABASE, "SELECT version FROM schema_migrations ORDER BY 1")
    assert recorded == [version for version, _ in migration_files()]
    # the project the old release created kept its database and keys, and still answers at the edge
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    now = json.loads(sandbox.check(f"{wrapper} nextmavens keys show {upgrade.UPGRADE_PROBE} --json"))
    for key in ("database_url", "anon_key", "service_role_key", "jwt_secret"):
        assert now.get(key) == previous.keys.get(key), f"{key} of {upgrade.UPGRADE_PROBE} changed in the upgrade"
    ref = upgrade.UPGRADE_PROBE.split("/")[1]
    status = sandbox.check(
        f"curl -sS -o /dev/null -w '%{{http_code}}' -H 'Host: {ref}.{data['api_domain']}' "
        f"-H 'apikey: {now['anon_key']}' http://127.0.0.1/rest/v1/"
    )
    assert status.strip() == "200", status


def _psql_lines(sandbox: Sandbox, data: dict[str, Any], database: str, sql: str) -> list[str]:
    from shlex import quote

    out = sandbox.check(
        f"docker exec nextmavens-postgres psql -X -qtA -v ON_ERROR_STOP=1 -U {quote(data['postgres_admin_user'])} "
        f"-d {quote(database)} -c {quote(sql)}"
    )
    return out.split()


def _ufw_rules(host) -> set[str]:
    out = host.check_output("ufw status")
    assert re.search(r"^Status: active$", out, re.M), out
    rules = set()
    for line in out.splitlines():
        m = re.match(r"^(\S+(?: \(v6\))?)\s+(ALLOW|DENY|REJECT|LIMIT)(?: IN)?\s+(.+?)\s*$", line)
        if m:
            rules.add(f"{m.group(1)} {m.group(2)} {m.group(3)}")
    return rules


def test_ufw_active_with_exactly_the_expected_rules(host, data: dict[str, Any]) -> None:
    verbose = host.check_output("ufw status verbose")
    assert "Default: deny (incoming)" in verbose, verbose
    expected = set()
    for port in [f"{data['ssh_port']}/tcp", *data["firewall_allowed_ports"]]:
        expected.add(f"{port} ALLOW Anywhere")
        expected.add(f"{port} (v6) ALLOW Anywhere (v6)")
    # Evolution's webhook port, from its own docker network only (IPv4: the network has no IPv6)
    expected.add(f"{data['evolution_hooks_port']}/tcp ALLOW {data['evolution_hooks_subnet']}")
    assert _ufw_rules(host) == expected


def test_ssh_hardened_and_still_reachable(sandbox: Sandbox, host, data: dict[str, Any]) -> None:
    effective = host.check_output("sshd -T")
    assert re.search(r"^passwordauthentication no$", effective, re.M)
    assert re.search(rf"^permitrootlogin {re.escape(data['ssh_permit_root_login'])}$", effective, re.M) or (
        data["ssh_permit_root_login"] == "prohibit-password"
        and re.search(r"^permitrootlogin without-password$", effective, re.M)
    ), effective
    assert sandbox.check("true") == ""
    admin = data["admin_user"]
    assert host.user(admin).exists
    assert sandbox.run("sudo -n true", user=admin).returncode == 0, "admin user cannot sudo by key login"


def test_docker_active_with_log_rotation(host, data: dict[str, Any]) -> None:
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon.get("log-driver", "json-file") in ("json-file", "local")
    assert daemon["log-opts"]["max-size"] == data["docker_log_max_size"]
    assert str(daemon["log-opts"]["max-file"]) == str(data["docker_log_max_file"])
    assert daemon.get("live-restore") is True
    assert host.check_output("docker info --format '{{.LoggingDriver}}'") == daemon.get("log-driver", "json-file")
    nets = host.check_output("docker network ls --format '{{.Name}}'").split()
    assert data["docker_network"] in nets


def test_nginx_active(host) -> None:
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled
    assert host.run("nginx -t").rc == 0


def _containers(host) -> list[dict[str, Any]]:
    ids = host.check_output("docker ps -aq").split()
    assert ids, "no containers at all"
    return json.loads(host.check_output("docker inspect " + " ".join(ids)))


def test_stack_containers_running(host) -> None:
    containers = _containers(host)
    projects = {c["Config"]["Labels"].get("com.docker.compose.project") for c in containers}
    stacks = sorted(p.name for p in (REPO / "stacks").iterdir() if (p / "stack.yaml").is_file())
    for stack in stacks:
        meta = (REPO / "stacks" / stack / "stack.yaml").read_text()
        m = re.search(r"^project:\s*(\S+)", meta, re.M)
        assert m, f"stacks/{stack}/stack.yaml has no project"
        assert m.group(1) in projects, f"no containers for stack {stack} ({m.group(1)}); projects: {projects}"
    bad = {
        c["Name"]: c["State"]["Status"] + (" restarting" if c["State"].get("Restarting") else "")
        for c in containers
        # an app's retained releases are stopped on purpose (rollback starts one again): not the stacks' concern
        if "io.nextmavens.app" not in (c["Config"]["Labels"] or {})
        and (c["State"]["Status"] != "running" or c["State"].get("Restarting"))
    }
    assert not bad, f"containers not running: {bad}"


def test_no_container_port_beyond_loopback_or_internal(host) -> None:
    for c in _containers(host):
        for port, bindings in (c["HostConfig"].get("PortBindings") or {}).items():
            for b in bindings or []:
                assert b.get("HostIp") in ("127.0.0.1", "::1"), f"{c['Name']} publishes {port} on {b}"
    # every listening socket on a non-loopback address belongs to sshd or nginx
    internal = [
        ipaddress.ip_network(s)
        for s in host.check_output(
            "docker network inspect $(docker network ls -q) --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'"
        ).split()
    ]
    offenders = []
    for line in host.check_output("ss -ltnpH").splitlines():
        cols = line.split()
        local = cols[3]
        addr = local.rsplit(":", 1)[0].strip("[]").split("%")[0]
        if addr in ("*", "0.0.0.0", "::"):
            ip = None
        else:
            ip = ipaddress.ip_address(addr)
            if ip.is_loopback or any(ip in n for n in internal):
                continue
        if not re.search(r'users:\(\("(sshd|nginx)"', line):
            offenders.append(line)
    assert not offenders, "listening beyond loopback/internal networks:\n" + "\n".join(offenders)


def test_secrets_files_private(host, data: dict[str, Any]) -> None:
    secrets = host.file(data["secrets_file"])
    assert secrets.exists and secrets.is_file
    assert secrets.mode == 0o600 and secrets.user == "root"
    platform = data["platform_dir"]
    # The venvs are code (a module named secretstore.py), not secrets: leave them out of the name match.
    loose = host.check_output(
        f"find {platform} /etc/nextmavens -path {platform}/venvs -prune -o -type f \\( -name '*.env' -o -name '.env' "
        "-o -name '*secret*' -o -name '*.key' \\) -perm /077 -print"
    )
    assert loose == "", f"secret files readable by others:\n{loose}"
    assert "POSTGRES_PASSWORD" in host.check_output(f"cut -d= -f1 {data['secrets_file']}")
    # The engine's master key, created by the apply that ends the deploy.
    master_key = host.file(f"{platform}/master.key")
    assert master_key.exists and master_key.mode == 0o600 and master_key.user == "root"
    # any file on the platform's paths that holds a generated secret value must be private too
    # ... and the platform service's own copies (its user's, 0600)
    own = f"/etc/{data['platform_user']}"
    script = SECRET_SCAN.format(secrets=data["secrets_file"], bases=[platform, "/etc/nextmavens", own])
    holders = host.check_output(f"python3 - <<'PY'\n{script}PY")
    lines = [ln.split(" ", 1) for ln in holders.splitlines() if ln.strip()]
    assert [p for _, p in lines if p == data["secrets_file"]], "the secrets file holds no secret values"
    assert [p for _, p in lines if p == f"{own}/pgpass"], "the platform service's pgpass holds no secret value"
    assert [p for _, p in lines if p == f"{own}/evolution.key"], "the platform service has no Evolution key"
    assert host.file(f"{own}/evolution.key").user == data["platform_user"]
    leaked = [f"{mode} {p}" for mode, p in lines if int(mode, 8) & 0o077]
    assert not leaked, "files holding secret values readable by others:\n" + "\n".join(leaked)


SECRET_SCAN = """
import os
values = [ln.split("=", 1)[1].strip() for ln in open({secrets!r}) if "=" in ln and not ln.startswith("#")]
values = [v for v in values if len(v) >= 8]
for base in {bases!r}:
    for d, dirs, files in os.walk(base):
        dirs[:] = [x for x in dirs if x not in ("venv", "venvs", "wheelhouse")]
        for f in files:
            path = os.path.join(d, f)
            try:
                data = open(path, "rb").read(4_000_000).decode("utf-8", "ignore")
            except OSError:
                continue
            if any(v in data for v in values):
                print(oct(os.stat(path).st_mode & 0o777)[2:], path)
"""


def test_the_venv_holds_exactly_the_locked_dependencies(sandbox: Sandbox, data: dict[str, Any]) -> None:
    """The platform service's dependencies are importable on the host, at the versions requirements/host.lock pins,
    in a venv that sees none of Debian's python3-* packages."""
    from nextmavens.host.lockfile import LOCK_PATH, host_environment, parse_lock, pins_for

    python = f"{data['platform_dir']}/venv/bin/python"
    sandbox.check(f"{python} -c 'import fastapi, uvicorn, psycopg_pool, nextmavens.platform'")
    listed = json.loads(sandbox.check(f"{python} -m pip list --format json --disable-pip-version-check"))
    installed = {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in listed}
    version = sandbox.check(f"{python} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'").strip()
    machine = sandbox.check("uname -m").strip()
    locked = pins_for(parse_lock((REPO / LOCK_PATH).read_text()), host_environment(version, machine))
    assert {pin.name: installed.get(pin.name) for pin in locked} == {pin.name: pin.version for pin in locked}
    extra = set(installed) - {pin.name for pin in locked} - {"nextmavens", "pip"}
    assert not extra, f"installed beyond the lock: {sorted(extra)}"
    cfg = sandbox.check(f"cat {data['platform_dir']}/venv/pyvenv.cfg")
    assert "include-system-site-packages = false" in cfg


def test_break_and_repair(sandbox: Sandbox, host, data: dict[str, Any]) -> None:
    # 1. stop a stack container; 2. edit a rendered file; 3. delete a ufw rule
    containers = [c for c in _containers(host) if c["Config"]["Labels"].get("com.docker.compose.project")]
    victim = sorted(c["Name"].lstrip("/") for c in containers)[0]
    host.check_output(f"docker stop {victim}")
    rendered = host.check_output(
        f"find {data['platform_dir']}/stacks -name 'compose.yaml' -o -name 'docker-compose.yml' | sort | head -1"
    )
    assert rendered, "no rendered compose file found"
    before = host.check_output(f"sha256sum {rendered}")
    host.check_output(f"printf '# tampered\\n' >> {rendered}")
    port = data["firewall_allowed_ports"][0]
    host.check_output(f"ufw delete allow {port}")
    assert f"{port} ALLOW Anywhere" not in _ufw_rules(host)

    repaired = converge(sandbox)
    assert repaired["changed"], "a converge after breaking things changed nothing"
    assert host.check_output(f"sha256sum {rendered}") == before
    assert host.check_output(f"docker inspect -f '{{{{.State.Status}}}}' {victim}") == "running"
    assert f"{port} ALLOW Anywhere" in _ufw_rules(host)
    again = converge(sandbox)
    assert again["changed"] == [], f"converge after repair is not a no-op: {again['changed']}"


def test_the_example_projects_are_applied_on_the_host(host, data: dict[str, Any]) -> None:
    """site.py ends with the engine's apply: a plan on the host now finds nothing to change."""
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    plan = host.run(f"{wrapper} nextmavens plan --projects {data['projects_dir']} --json")
    assert plan.rc == 0, plan.stdout + plan.stderr
    keys = host.run(f"{wrapper} nextmavens keys show acme/shop --json")
    assert keys.rc == 0, keys.stderr
    access = json.loads(keys.stdout)
    assert access["database_url"].startswith("postgresql://owner_shop:")
    assert access["anon_key"].count(".") == 2


def test_the_example_whatsapp_instance_is_in_evolution_and_a_second_apply_changes_nothing(
    host, data: dict[str, Any]
) -> None:
    """projects/acme/shop.yaml declares `orders`: apply converges it in the Evolution stand-in (its container),
    with the token and webhook secret sealed in the control database. Applied here first: the break-and-repair
    test stops the Evolution container, and the repair's converge runs no apply (nothing it hashes changed)."""
    from shlex import quote

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    first = host.run(f"{wrapper} nextmavens apply --yes")
    assert first.rc == 0, first.stderr
    assert "whatsapp instance shop--orders" in first.stdout, first.stdout
    shown = host.run(f"{wrapper} nextmavens whatsapp show acme/shop --json")
    assert shown.rc == 0, shown.stderr
    rows = {r["name"]: r for r in json.loads(shown.stdout)["instances"]}
    assert set(rows) == {"orders"}
    orders = rows["orders"]
    assert (orders["evolution_name"], orders["state"]) == ("shop--orders", "close")
    assert orders["webhook_url"] == f"{data['evolution_hooks_url']}/hooks/evolution/acme/shop/orders"
    assert len(orders["token"]) >= 32 and len(orders["webhook_secret"]) >= 43
    port = data["loopback_ports"]["evolution"]
    fetch = f'curl -sS -m 10 -H "apikey: $EVOLUTION_API_KEY" http://127.0.0.1:{port}/instance/fetchInstances'
    listed = host.run(f"{wrapper} sh -c {quote(fetch)}")
    assert listed.rc == 0, listed.stderr
    held = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "shop--orders" in held and held["shop--orders"]["token"] == orders["token"]
    again = host.run(f"{wrapper} nextmavens apply --yes")
    assert again.rc == 0, again.stderr
    assert "edge: shop: whatsapp instance shop--orders unchanged" in again.stdout, again.stdout


def _hooks_probe(host, network: str, url: str) -> str:
    """POST `url` from a throwaway container on `network` (the stand-in image, not Evolution): the HTTP status, or
    the error that stopped the request (a firewall drop is a timeout)."""
    from shlex import quote

    probe = (
        "import urllib.request, urllib.error\n"
        f"req = urllib.request.Request({url!r}, data=b'{{}}', headers={{'Content-Type': 'application/json'}})\n"
        "try:\n    print(urllib.request.urlopen(req, timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
        "except OSError as e:\n    print(type(getattr(e, 'reason', e)).__name__)\n"
    )
    return host.check_output(
        f"docker run --rm --network {quote(network)} --entrypoint python3 nextmavens-local/standin:1 -c {quote(probe)}"
    ).strip()


def test_an_inbound_whatsapp_message_reaches_the_platform_service_through_nginx_from_evolution_only(
    host, data: dict[str, Any]
) -> None:
    """The stand-in inside the Evolution container sends a messages.upsert for `orders` (as 2.3.7 would for an
    incoming message) to its webhook URL: host.docker.internal on the hooks network, the host's nginx, the platform
    service. Runs after the test above (the instance exists, its webhook set). Any other source is refused."""
    from shlex import quote

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    port, hooks_port = data["loopback_ports"]["evolution"], data["evolution_hooks_port"]
    # the Evolution container is on the hooks network at the address nginx allows
    addresses = host.check_output(
        "docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}' "
        "nextmavens-evolution"
    )
    gateway = str(ipaddress.ip_network(data["evolution_hooks_subnet"]).network_address + 1)
    evolution_ip = str(ipaddress.ip_network(data["evolution_hooks_subnet"]).network_address + 2)
    assert f"{data['evolution_hooks_network']}={evolution_ip}" in addresses.split(), addresses
    text = f"e2e hello {time.time_ns()}"
    simulate = (
        f'curl -sS -m 30 -H "apikey: $EVOLUTION_API_KEY" -H "Content-Type: application/json" '
        f"--data {quote(json.dumps({'event': 'messages.upsert', 'text': text}))} "
        f"http://127.0.0.1:{port}/standin/evolution/simulate/shop--orders"
    )
    answer = json.loads(host.check_output(f"{wrapper} sh -c {quote(simulate)}"))
    assert answer["sent"] is True, answer
    assert answer["url"] == f"{data['evolution_hooks_url']}/hooks/evolution/acme/shop/orders", answer
    # The receiver answered 2xx after its commit (not nginx's 403/404, not a 5xx): the request crossed the hooks
    # network, ufw and nginx, and the message is a row of the project's whatsapp.messages.
    assert answer["status"] is not None and 200 <= answer["status"] < 300, answer
    assert set(json.loads(answer["answer"])) == {"stored"}, answer  # false if a timed-out try had stored it
    assert re.fullmatch(r"[0-9A-F]{20}", answer["message_id"]), answer  # the stand-in's id: safe in SQL below
    query = f"SELECT instance || ' ' || remote_jid || ' ' || text FROM whatsapp.messages WHERE message_id = '{answer['message_id']}'"  # noqa: S608, E501 - the id is checked just above
    rows = _psql(host, data, "shop", query)
    assert rows.strip() == f"orders 5511999990000@s.whatsapp.net {text}", rows
    hooks_path = "/hooks/evolution/acme/shop/orders"
    # anything else on the port: nginx's 404, never the service
    other = host.check_output(f"curl -sS -m 10 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{hooks_port}/v1/me")
    assert other == "404", other
    # another address: the host itself (loopback) is refused by nginx's allow list
    mine = host.check_output(
        f"curl -sS -m 10 -o /dev/null -w '%{{http_code}}' -X POST http://127.0.0.1:{hooks_port}{hooks_path}"
    )
    assert mine == "403", mine
    # another container on the hooks network (not Evolution's address): nginx refuses it
    assert _hooks_probe(host, data["evolution_hooks_network"], f"http://{gateway}:{hooks_port}{hooks_path}") == "403"
    # a container on the shared network (every project's containers): ufw drops it before nginx
    dropped = _hooks_probe(host, data["docker_network"], f"http://{gateway}:{hooks_port}{hooks_path}")
    assert dropped == "TimeoutError", dropped


# --- the manifest repository on the host ---------------------------------------------------------------------
def _host_git(data: dict[str, Any], *args: str) -> str:
    """git in the host's manifest repository as the service's user (who owns it)."""
    from shlex import join

    path = data["projects_dir"]
    return join(["runuser", "-u", data["platform_user"], "--", "git", "-C", path, *args])


def test_the_host_keeps_the_published_manifest_repository(
    sandbox: Sandbox, host, data: dict[str, Any], converged: dict[str, Any]
) -> None:
    """projects_dir is a git work tree owned by the service's user, at the commit the deploy published (the sandbox
    operator's repository), with nothing uncommitted; the applies recorded that commit."""
    from nextmavens.gitrepo import git_ok

    local = git_ok(Path(sandbox.env["NEXTMAVENS_SANDBOX_MANIFESTS"]), "rev-parse", "HEAD").strip()
    path = data["projects_dir"]
    assert host.check_output(_host_git(data, "rev-parse", "HEAD")) == local
    assert host.check_output(_host_git(data, "status", "--porcelain", "--untracked-files=all")) == ""
    assert host.file(path).user == data["platform_user"]
    assert host.file(f"{path}/.git/HEAD").user == data["platform_user"]
    assert not any(op.startswith("Manifest repository | Publish") for op in converged["second"]["changed"])
    recorded = _psql_lines(
        sandbox, data, "nextmavens", "SELECT manifest_commit FROM apply_runs WHERE manifest_commit IS NOT NULL"
    )
    assert recorded and set(recorded) == {local}, recorded


def _converge_output(sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    argv = [*PYINFRA, "-y", "inventory.py", "deploys/site.py"]
    return subprocess.run(
        argv, cwd=REPO, env=deploy_env(sandbox), capture_output=True, text=True, timeout=CONVERGE_TIMEOUT_S
    )


def test_a_commit_made_on_the_host_stops_the_deploy_until_the_operator_pulls_it(
    sandbox: Sandbox, host, data: dict[str, Any], tmp_path: Path
) -> None:
    """The service's commits are the host's: a deploy that would overwrite them refuses before any change and names
    them with the pull command, and that command, run as printed, brings them to the operator."""
    from shlex import quote

    from nextmavens.gitrepo import git_ok

    local = git_ok(Path(sandbox.env["NEXTMAVENS_SANDBOX_MANIFESTS"]), "rev-parse", "HEAD").strip()
    note = f"{data['projects_dir']}/acme/e2e-note.txt"
    host.check_output(f"runuser -u {quote(data['platform_user'])} -- sh -c 'echo note > {quote(note)}'")
    ident = ["-c", "user.name=Service", "-c", "user.email=service@sandbox.test"]
    host.check_output(_host_git(data, "add", "acme/e2e-note.txt"))
    host.check_output(_host_git(data, *ident, "commit", "--quiet", "-m", "A commit made on the host"))
    try:
        refused = _converge_output(sandbox)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0, output[-3000:]
        assert "has commits that" in output and "Service: A commit made on the host" in output, output[-3000:]
        assert "Starting operation" not in output, "the refused deploy ran operations"
        pull = next(line.strip() for line in output.splitlines() if line.strip().startswith("git pull "))
        # the printed command, run in a clone of the operator's repository, fetches the host's commit
        clone = tmp_path / "operator"
        git_ok(tmp_path, "clone", "--quiet", sandbox.env["NEXTMAVENS_SANDBOX_MANIFESTS"], str(clone))
        ssh = " ".join(sandbox.ssh_argv(data["admin_user"])[:-2])  # without -T and the destination
        pulled = subprocess.run(
            ["sh", "-c", f"{pull.replace('git pull ', 'git pull --quiet --ff-only ', 1)}"],
            cwd=clone,
            env={**os.environ, "GIT_SSH_COMMAND": ssh},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pulled.returncode == 0, pulled.stderr
        assert (clone / "acme" / "e2e-note.txt").read_text() == "note\n"
    finally:
        host.check_output(_host_git(data, "reset", "--quiet", "--hard", local))
    assert host.check_output(_host_git(data, "rev-parse", "HEAD")) == local


# --- the edge: nginx -> Kong stand-in -> each project's REST stand-in ---------------------------
def _keys(host, data: dict[str, Any], ref: str) -> dict[str, Any]:
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    keys = host.run(f"{wrapper} nextmavens keys show {ref} --json")
    assert keys.rc == 0, keys.stderr
    return json.loads(keys.stdout)


def test_edge_settings_and_secrets_are_private(host, data: dict[str, Any]) -> None:
    config = host.file(data["edge_config_file"])
    assert config.exists and config.mode == 0o600 and config.user == "root"
    dump = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    python = f"{data['platform_dir']}/venv/bin/python"
    edge = json.loads(host.check_output(f"{python} -c '{dump}' {data['edge_config_file']}"))
    assert edge["issue_certificates"] is False  # no public DNS reaches the sandbox
    for path in edge["secret_files"].values():
        f = host.file(path)
        assert f.exists and f.mode == 0o600 and f.user == "root", path
    wrapper = host.file(f"{data['platform_dir']}/bin/nextmavens-env").content_string
    assert "NEXTMAVENS_EDGE_CONFIG=" in wrapper


def test_project_host_routes_through_nginx_and_kong_with_its_own_key_only(host, data: dict[str, Any]) -> None:
    shop, crm = _keys(host, data, "acme/shop"), _keys(host, data, "acme/crm")
    name = f"shop.{data['api_domain']}"

    def curl(key: str | None) -> tuple[str, str]:
        header = f" -H 'apikey: {key}'" if key else ""
        out = host.run(
            f"curl -sS -m 10 -o /tmp/nm-edge-body -w '%{{http_code}}' -H 'Host: {name}'{header} "
            "http://127.0.0.1/rest/v1/; cat /tmp/nm-edge-body; rm -f /tmp/nm-edge-body"
        )
        return out.stdout[:3], out.stdout[3:]

    status, body = curl(shop["anon_key"])
    assert status == "200", (status, body)
    answer = json.loads(body)
    assert answer["service"] == "postgrest" and answer["standin"] is True
    assert "shop" in answer["project"], answer
    status, _ = curl(crm["anon_key"])
    assert status in ("401", "403"), status
    status, _ = curl(None)
    assert status == "401", status


def test_project_containers_run_with_memory_limits(host) -> None:
    containers = [
        c
        for c in _containers(host)
        if (c["Config"]["Labels"].get("com.docker.compose.project") or "").startswith("nm-")
    ]
    projects = {c["Config"]["Labels"]["com.docker.compose.project"] for c in containers}
    assert {"nm-shop", "nm-crm"} <= projects or len(projects) >= 2, projects
    for c in containers:
        assert c["State"]["Status"] == "running", c["Name"]
        assert c["HostConfig"]["Memory"] > 0, f"{c['Name']} runs without a memory limit"


def test_container_logs_follows_a_project_container_on_the_host(
    sandbox: Sandbox, host, data: dict[str, Any]
) -> None:
    """`nextmavens container-logs` through the host's wrapper, as sudo runs it for the platform service: requests
    made while it follows show up in its output, and a stop signal leaves no `docker logs` behind. Then the
    service's own streaming (logstream) with the guest as its privileged prefix: the lines arrive as events while
    the stream is open, and the stream ends at its time bound."""
    import asyncio
    import threading

    from nextmavens.containerlogs import command_argv
    from nextmavens.platform.logstream import Bounds, start, stream_events

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    key = _keys(host, data, "acme/shop")["anon_key"]
    name = f"shop.{data['api_domain']}"

    def requests(probe: str) -> None:
        for _ in range(3):
            sandbox.run(
                f"curl -sS -m 5 -o /dev/null -H 'Host: {name}' -H 'apikey: {key}' http://127.0.0.1/rest/v1/{probe}"
            )
            time.sleep(0.5)

    probe = f"logs-probe-{int(time.time())}"
    followed = host.run(
        f"timeout -s TERM 10 {wrapper} nextmavens container-logs acme/shop rest --since 1m --follow"
        f" > /tmp/nm-logs-e2e.out 2>&1 & sleep 4; "
        + "; ".join(
            f"curl -sS -m 5 -o /dev/null -H 'Host: {name}' -H 'apikey: {key}' http://127.0.0.1/rest/v1/{probe}"
            for _ in range(3)
        )
        + "; wait; cat /tmp/nm-logs-e2e.out; rm -f /tmp/nm-logs-e2e.out"
    )
    assert probe in followed.stdout, followed.stdout[-3000:] + followed.stderr[-2000:]
    assert re.search(rf"^20\d\d-\d\d-\d\dT[\d:.]+Z .*{probe}", followed.stdout, re.M), followed.stdout[-2000:]
    assert host.run("pgrep -f 'docker logs --timestamp[s]'").rc == 1, "a docker logs process outlived its command"
    refused = host.run(f"{wrapper} nextmavens container-logs acme/shop rest --since '1m --volumes'")
    assert refused.rc != 0 and "since takes" in refused.stderr

    # The service's path: privileged_argv (here: into the guest, with a terminal so the remote end stops with it).
    prefix = [*(arg if arg != "-T" else "-tt" for arg in sandbox.ssh_argv()), "--", wrapper, "nextmavens"]
    probe = f"stream-probe-{int(time.time())}"
    started = time.monotonic()
    later = threading.Timer(4, requests, (probe,))

    async def collect() -> list[tuple[float, bytes]]:
        child = await start([*prefix, *command_argv("acme", "shop", "rest", None, True)], os.environ)
        later.start()
        stream = stream_events(child, Bounds(12, 1 << 20, 10_000))
        return [(time.monotonic() - started, chunk) async for chunk in stream]

    received = asyncio.run(collect())
    later.join()
    arrived = [at for at, chunk in received if chunk.startswith(b"data: ") and probe.encode() in chunk]
    assert arrived and all(4 < at < 11.5 for at in arrived), [(at, chunk[:120]) for at, chunk in received][-20:]
    assert received[-1][1].startswith(b'event: end\ndata: {"reason": "max_seconds"'), received[-1]
    deadline = time.monotonic() + 10
    while host.run("pgrep -f 'docker logs --timestamp[s]'").rc != 1:
        assert time.monotonic() < deadline, "the guest's docker logs outlived the stream"
        time.sleep(0.5)


def test_keys_rotate_on_the_host_revokes_the_old_key_at_the_edge(host, data: dict[str, Any]) -> None:
    """After `keys rotate`, nginx -> Kong refuses the old key and passes the new one, and
    the project's REST container runs with the new JWT secret."""
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    name = f"shop.{data['api_domain']}"

    def status(key: str) -> str:
        out = host.run(
            f"curl -sS -m 10 -o /dev/null -w '%{{http_code}}' -H 'Host: {name}' -H 'apikey: {key}' "
            "http://127.0.0.1/rest/v1/"
        )
        return out.stdout.strip()

    def rest_jwt_secret() -> str:
        ids = host.check_output(
            "docker ps -q --filter label=com.docker.compose.project=nm-shop "
            "--filter label=com.docker.compose.service=rest"
        ).split()
        assert len(ids) == 1, ids
        env = json.loads(host.check_output(f"docker inspect {ids[0]}"))[0]["Config"]["Env"]
        found = [line.split("=", 1)[1] for line in env if line.startswith("PGRST_JWT_SECRET=")]
        assert len(found) == 1, "the REST container has no PGRST_JWT_SECRET"
        return found[0]

    old = _keys(host, data, "acme/shop")
    assert status(old["anon_key"]) == "200"
    rotated = host.run(f"{wrapper} nextmavens keys rotate acme/shop --projects {data['projects_dir']}")
    assert rotated.rc == 0, rotated.stdout + rotated.stderr
    assert "edge: kong: config loaded" in rotated.stdout, rotated.stdout
    new = _keys(host, data, "acme/shop")
    assert new["anon_key"] != old["anon_key"] and new["jwt_secret"] != old["jwt_secret"]
    assert status(old["anon_key"]) == "401"
    assert status(new["anon_key"]) == "200"
    assert rest_jwt_secret() == new["jwt_secret"]


# --- `nextmavens doctor`, the host's smoke check (also the deploy's last step) ---------------------
def test_doctor_passes_on_the_converged_sandbox_and_says_what_it_skipped(host, data: dict[str, Any]) -> None:
    """Against the stand-ins and real parts: every check passes; certificates (off here) and image pins
    (substitutes here) are reported as skipped with the reason, never as ok."""
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    text = host.run(f"{wrapper} nextmavens doctor")
    assert text.rc == 0, text.stdout + text.stderr
    assert "0 failed" in text.stdout and "skipped" in text.stdout, text.stdout
    result = host.run(f"{wrapper} nextmavens doctor --json")
    assert result.rc == 0, result.stdout + result.stderr
    checks = json.loads(result.stdout)
    assert all(set(c) >= {"name", "target", "ok", "detail", "hint"} for c in checks)
    assert not [c for c in checks if c["ok"] is False], [c for c in checks if c["ok"] is False]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        by_name.setdefault(c["name"], []).append(c)
    assert [c["ok"] for c in by_name["kong config"]] == [True] and [c["ok"] for c in by_name["kong status"]] == [True]
    assert {c["target"] for c in by_name["postgrest ready"]} == {"shop", "crm"}
    assert {c["target"] for c in by_name["gotrue health"]} == {"shop", "crm"}
    assert {c["target"] for c in by_name["realtime tenant"]} == {"shop", "crm"}
    assert {c["target"] for c in by_name["supavisor tenant"]} == {"shop", "crm", "helpdesk"}
    nginx = {c["target"]: c["detail"] for c in by_name["nginx"]}
    assert nginx[f"shop.{data['api_domain']}"] == "HTTP 200"
    assert nginx[f"helpdesk.{data['api_domain']}"] == "suspended: 503"
    assert [c["ok"] for c in by_name["postgres-meta"] + by_name["evolution api"]] == [True, True]
    memory = {c["target"] for c in by_name["memory limit"] if c["ok"]}
    assert {"nextmavens-kong", "nextmavens-postgres", "shop rest", "crm auth"} <= memory
    for name, reason in (("certificate", "certificates are off"), ("image pin", "images are substitutes")):
        assert by_name[name] and all(c["ok"] is None and c["status"] == "skipped" for c in by_name[name])
        assert all(reason in c["detail"] for c in by_name[name])


def test_the_deploy_ran_the_doctor_and_a_healthy_host_is_no_change(converged: dict[str, Any]) -> None:
    for run in ("first", "second"):
        assert "nextmavens doctor: " in converged[run]["log"] and "checks ok" in converged[run]["log"]
    assert not [name for name in converged["second"]["changed"] if "doctor" in name.lower()]


def test_doctor_fails_and_names_kong_when_its_config_is_lost(host, data: dict[str, Any]) -> None:
    """A restarted Kong runs the seed config until the next apply: the doctor names it, apply repairs it."""
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    assert host.run("docker restart nextmavens-kong").rc == 0
    admin = f"http://127.0.0.1:{data['loopback_ports']['kong_admin']}/status"
    # Bounded wait until the restarted Kong answers again (the doctor also fails while it does not).
    up = host.run(f"for i in $(seq 1 60); do curl -sf -o /dev/null {admin} && exit 0; sleep 0.5; done; exit 1")
    assert up.rc == 0, "Kong's admin API did not come back within 30 s"
    try:
        result = host.run(f"{wrapper} nextmavens doctor --json")
        assert result.rc == 1, result.stdout + result.stderr
        failed = {(c["name"], c["target"]) for c in json.loads(result.stdout) if c["ok"] is False}
        assert ("kong config", "kong") in failed, failed
    finally:
        repaired = host.run(f"{wrapper} nextmavens apply --yes")
        assert repaired.rc == 0, repaired.stdout + repaired.stderr
    assert host.run(f"{wrapper} nextmavens doctor").rc == 0


# --- real parts in the sandbox: postgres-meta from npm, the Postgres image's extensions -----------
def _meta(host, data: dict[str, Any], path: str, database: str | None = None) -> tuple[int, str]:
    """GET a path of the real postgres-meta on its loopback port, from inside the guest.

    postgres-meta 0.91.6 ignores a `pg` header sent by a client (routes/index.ts replaces it with its default
    connection); another database is chosen only by `x-connection-encrypted`: the connection string AES-encrypted
    with CRYPTO_KEY by crypto-js, as Studio sends it. The string is made inside the meta container, from its own
    PG_META_DB_* settings, so no password leaves the guest or reaches this test's output.
    """
    from shlex import quote

    port = data["loopback_ports"]["postgres_meta"]
    if database is not None:
        js = (
            "const C=require('crypto-js');const e=process.env;const u=new URL('postgresql://');"
            "u.hostname=e.PG_META_DB_HOST;u.port=e.PG_META_DB_PORT;u.username=e.PG_META_DB_USER;"
            "u.password=e.PG_META_DB_PASSWORD;u.pathname=encodeURIComponent(e.NM_DB);"
            "u.searchParams.set('sslmode','disable');process.stdout.write(C.AES.encrypt(u.toString(),e.CRYPTO_KEY).toString())"
        )
        header = (
            f'enc=$(docker exec -e NM_DB={quote(database)} nextmavens-meta node -e {quote(js)}) && [ -n "$enc" ] && '
        )
        header += 'curl -sS -m 60 -H "x-connection-encrypted: $enc" '
    else:
        header = "curl -sS -m 60 "
    out = host.run(
        f"{header}-o /tmp/nm-meta-body -w '%{{http_code}}' http://127.0.0.1:{port}{path}; "
        "cat /tmp/nm-meta-body; rm -f /tmp/nm-meta-body"
    )
    assert out.stdout[:3].isdigit(), out.stdout[:200] + out.stderr[-500:]
    return int(out.stdout[:3]), out.stdout[3:]


def _project_database(host, data: dict[str, Any], ref: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(_keys(host, data, ref)["database_url"]).path.lstrip("/")


def _wait_healthy(host, container: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = host.check_output(f"docker inspect -f '{{{{.State.Health.Status}}}}' {container}")
        if status in ("healthy", "unhealthy"):
            return status
        time.sleep(1)
    return status


def test_postgres_meta_is_the_real_program_with_its_memory_limit(host, data: dict[str, Any]) -> None:
    [meta] = json.loads(host.check_output("docker inspect nextmavens-meta"))
    assert meta["Config"]["Image"] == data["images"]["postgres_meta"] == "nextmavens-local/postgres-meta:0.91.6"
    assert meta["HostConfig"]["Memory"] == data["memory_limits_mb"]["postgres_meta"] * 1024 * 1024
    assert not any(e.startswith("STANDIN_") for e in meta["Config"]["Env"]), "postgres-meta still has stand-in env"
    assert _wait_healthy(host, "nextmavens-meta") == "healthy"  # the image's HEALTHCHECK, as upstream's

    status, body = _meta(host, data, "/")
    assert status == 200, body
    about = json.loads(body)
    assert (about["name"], about["version"]) == ("@supabase/postgres-meta", "0.91.6")
    assert "standin" not in about
    status, body = _meta(host, data, "/health")
    assert status == 200 and "date" in json.loads(body), body


def test_postgres_meta_introspects_a_project_database(host, data: dict[str, Any]) -> None:
    """acme/shop declares schema `catalog`: the shop database has it, the shared `postgres` database has not."""
    shop_db = _project_database(host, data, "acme/shop")
    status, body = _meta(host, data, "/schemas")
    assert status == 200, body
    assert "catalog" not in {s["name"] for s in json.loads(body)}

    status, body = _meta(host, data, "/schemas", database=shop_db)
    assert status == 200, body
    schemas = {s["name"] for s in json.loads(body)}
    assert {"catalog", "public"} <= schemas, schemas

    status, body = _meta(host, data, "/generators/typescript?included_schemas=catalog,public", database=shop_db)
    assert status == 200, body[:500]
    assert "export type Database = {" in body and "  catalog: {" in body and "  public: {" in body, body[:800]

    # a connection string encrypted with another key is refused, not silently served from the default database
    port = data["loopback_ports"]["postgres_meta"]
    wrong = host.run(
        "curl -sS -m 30 -o /dev/null -w '%{http_code}' -H 'x-connection-encrypted: U2FsdGVkX19AAAAAAAAAAAAAAAAAAAAA' "
        f"http://127.0.0.1:{port}/schemas"
    )
    assert wrong.stdout.strip() not in ("200", ""), wrong.stdout


def _psql(host, data: dict[str, Any], database: str, sql: str) -> str:
    from shlex import quote

    admin = data["postgres_admin_user"]
    return host.check_output(
        f"docker exec nextmavens-postgres psql -X -qtA -v ON_ERROR_STOP=1 -U {quote(admin)} -d {quote(database)} "
        f"-c {quote(sql)}"
    )


def test_postgres_image_preloads_pg_cron_and_pgaudit(host, data: dict[str, Any]) -> None:
    # the stack's `command:` (the pinned image's `-D /etc/postgresql`, then replication sized to max_projects)
    # runs on the sandbox image too, and its settings win over the image's
    from nextmavens.host.pgsizing import replication_capacity

    capacity = replication_capacity(data["max_projects"])
    assert _psql(host, data, "postgres", "SHOW config_file") == "/etc/postgresql/postgresql.conf"
    assert _psql(host, data, "postgres", "SHOW max_replication_slots") == str(capacity.max_replication_slots)
    assert _psql(host, data, "postgres", "SHOW max_wal_senders") == str(capacity.max_wal_senders)
    preload = _psql(host, data, "postgres", "SHOW shared_preload_libraries")
    assert {"pg_stat_statements", "pgaudit", "pg_cron"} <= {p.strip() for p in preload.split(",")}, preload
    assert _psql(host, data, "postgres", "SHOW cron.database_name") == "postgres"
    available = _psql(host, data, "postgres", "SELECT name FROM pg_available_extensions ORDER BY name").splitlines()
    assert {"postgis", "pgaudit", "pg_cron", "pg_stat_statements"} <= set(available)
    # both create for real (pg_cron schedules a job); rolled back, so the shared database keeps nothing
    created = _psql(
        host,
        data,
        "postgres",
        "BEGIN; CREATE EXTENSION pgaudit; CREATE EXTENSION pg_cron; "
        "SELECT cron.schedule('nm-e2e', '* * * * *', 'SELECT 1') > 0; ROLLBACK",
    )
    assert created.strip() == "t", created
    assert (
        _psql(host, data, "postgres", "SELECT count(*) FROM pg_extension WHERE extname IN ('pgaudit', 'pg_cron')")
        == "0"
    )
    assert (
        _psql(host, data, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'supabase_admin' AND rolsuper")
        == "1"
    )


_SANDBOX_ONLY_ORG = "initech"  # tests/e2e/manifests/initech: a project asking for PostGIS


def test_a_manifest_asking_for_postgis_and_vector_applies_for_real(host, data: dict[str, Any]) -> None:
    """The sandbox-only example tests/e2e/manifests/initech (PostGIS, pgvector) is applied on the host and checked
    in its database directly and through postgres-meta. It stays declared; the next test destroys it."""
    import base64
    from shlex import quote

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    projects = data["projects_dir"]
    org_dir = f"{projects}/{_SANDBOX_ONLY_ORG}"
    uploads = [f"mkdir -p {quote(org_dir)}"]
    for src in sorted((REPO / "tests" / "e2e" / "manifests" / _SANDBOX_ONLY_ORG).glob("*.yaml")):
        b64 = base64.b64encode(src.read_bytes()).decode()
        uploads.append(f"echo {b64} | base64 -d > {quote(org_dir + '/' + src.name)}")
    host.check_output(" && ".join(uploads))
    applied = host.run(f"{wrapper} nextmavens apply --projects {quote(projects)} --yes")
    assert applied.rc == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    database = _project_database(host, data, "initech/maps")
    rows = _psql(
        host,
        data,
        database,
        "SELECT extname || ':' || extnamespace::regnamespace FROM pg_extension "
        "WHERE extname IN ('postgis', 'pg_trgm') ORDER BY 1",
    )
    assert rows.splitlines() == ["pg_trgm:extensions", "postgis:extensions"], rows
    point = _psql(host, data, database, "SELECT extensions.ST_AsText(extensions.ST_MakePoint(1, 2))")
    assert point == "POINT(1 2)"
    # pgvector, built from Debian 13's source package for PostgreSQL 15: created by the engine, then a vector
    # column with an HNSW index and a nearest-neighbour query (rolled back: the project keeps no table)
    vector = _psql(
        host,
        data,
        database,
        "SELECT extnamespace::regnamespace || ':' || extversion FROM pg_extension WHERE extname = 'vector'",
    )
    assert vector.startswith("extensions:0."), vector
    nearest = _psql(
        host,
        data,
        database,
        "BEGIN; SET LOCAL search_path = public, extensions; "
        "CREATE TABLE public.nm_e2e_items (id int PRIMARY KEY, embedding vector(3) NOT NULL); "
        "INSERT INTO public.nm_e2e_items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]'); "
        "CREATE INDEX ON public.nm_e2e_items USING hnsw (embedding vector_l2_ops); "
        "SELECT id || ':' || round((embedding <-> '[0.1,0.9,0]')::numeric, 3) FROM public.nm_e2e_items "
        "ORDER BY embedding <-> '[0.1,0.9,0]' LIMIT 1; ROLLBACK",
    )
    assert nearest.strip() == "2:0.141", nearest
    status, body = _meta(host, data, "/extensions", database=database)
    assert status == 200, body[:500]
    postgis = [e for e in json.loads(body) if e["name"] == "postgis"]
    assert postgis and postgis[0]["installed_version"] and postgis[0]["schema"] == "extensions", postgis
    again = host.run(f"{wrapper} nextmavens plan --projects {quote(projects)} --json")
    assert again.rc == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_destroy_on_the_host_drops_the_sandbox_only_project(host, data: dict[str, Any]) -> None:
    """`nextmavens destroy` as an operator runs it on the host: the manifest removed first, then the confirmed
    destroy dumps and drops the project. (Found by this test: destroy's pg_dump comes from the host's own
    PostgreSQL binaries, which a host running PostgreSQL in a container does not have.)"""
    from shlex import quote

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    projects = data["projects_dir"]
    org_dir = f"{projects}/{_SANDBOX_ONLY_ORG}"
    if not host.file(f"{org_dir}/maps.yaml").exists:
        pytest.fail("the PostGIS example was not applied (see the test before)", pytrace=False)
    database = _project_database(host, data, "initech/maps")
    host.check_output(f"rm -f {quote(org_dir)}/maps.yaml {quote(org_dir)}/org.yaml && rmdir {quote(org_dir)}")
    destroyed = host.run(
        f"{wrapper} nextmavens destroy initech/maps --confirm initech/maps --projects {quote(projects)}"
    )
    assert destroyed.rc == 0, destroyed.stdout[-3000:] + destroyed.stderr[-3000:]
    assert database not in _psql(host, data, "postgres", "SELECT datname FROM pg_database").splitlines()


# --- the platform service: unprivileged behind nginx, its applies in the root-owned unit -------------------
def test_the_developer_cli_follows_a_project_container_through_the_platform_service(
    sandbox: Sandbox, host, data: dict[str, Any], tmp_path: Path
) -> None:
    """A laptop's `nextmavens logs --follow` (the executable beside this Python, through the developer commands'
    fast start) against the sandbox's platform service, reached through an SSH tunnel to its loopback port: a
    line the container writes after the command started arrives while it follows, Ctrl-C ends it with exit 130
    and no traceback, and the service then stops the guest's `docker logs`."""
    import signal
    import socket
    import threading

    from tests.support.ports import free_port

    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    token = json.loads(
        host.check_output(
            f"{wrapper} nextmavens token create --member ana@acme.example --project acme/shop --read-only "
            "--expires 1h --json"
        )
    )["token"]
    local = free_port()
    ssh = sandbox.ssh_argv()
    tunnel = subprocess.Popen(
        [*ssh[:-1], "-N", "-o", "ExitOnForwardFailure=yes", "-L",
         f"127.0.0.1:{local}:127.0.0.1:{data['loopback_ports']['platform']}", ssh[-1]],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    follower: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 20
        while True:
            assert tunnel.poll() is None, f"the tunnel ended: {tunnel.stderr.read() if tunnel.stderr else ''}"
            try:
                socket.create_connection(("127.0.0.1", local), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the tunnel to the platform service did not open"
                time.sleep(0.3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")} | {
            "NEXTMAVENS_URL": f"http://127.0.0.1:{local}",
            "NEXTMAVENS_TOKEN": token,
            "NEXTMAVENS_CONFIG_DIR": str(tmp_path / "config"),
        }
        executable = Path(sys.executable).parent / "nextmavens"
        argv = [str(executable), "logs", "acme/shop", "--service", "rest", "--since", "1m", "--follow"]
        follower = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        time.sleep(4)  # the stream is open; what follows is written after the command started
        probe = f"devcli-follow-{int(time.time())}-{os.getpid()}"
        key = _keys(host, data, "acme/shop")["anon_key"]
        name = f"shop.{data['api_domain']}"
        deadline = time.monotonic() + 40
        while not any(probe in line for line in lines):
            assert follower.poll() is None, f"logs ended early ({follower.returncode}): {follower.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"{probe} never arrived; got: {lines[-20:]}"
            sandbox.run(
                f"curl -sS -m 5 -o /dev/null -H 'Host: {name}' -H 'apikey: {key}' http://127.0.0.1/rest/v1/{probe}"
            )
            time.sleep(1)
        seen = next(line for line in lines if probe in line)
        assert re.match(r"^20\d\d-\d\d-\d\dT[\d:.]+Z ", seen), seen  # docker's timestamp first
        follower.send_signal(signal.SIGINT)  # Ctrl-C
        _, errors = follower.communicate(timeout=20)
        assert follower.returncode == 130, errors
        assert "Traceback" not in errors, errors
        deadline = time.monotonic() + 40  # the service notices the closed stream at its next write at the latest
        while host.run("pgrep -f 'docker logs --timestamp[s]'").rc != 1:
            assert time.monotonic() < deadline, "the guest's docker logs outlived the developer's command"
            time.sleep(1)
    finally:
        for process in (follower, tunnel):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _platform_repository(host, data: dict[str, Any]) -> None:
    """The manifest repository the service commits to: projects_dir as a git work tree owned by platform_user.
    Made here only where the deploy has not made it yet."""
    from shlex import quote

    user, projects = data["platform_user"], quote(data["projects_dir"])
    if not host.file(f"{data['projects_dir']}/.git").exists:
        host.check_output(f"chown -R {user}: {projects}")
        git = f"runuser -u {user} -- git -C {projects} -c user.name=operator -c user.email=operator@sandbox.test"
        host.check_output(f"{git} init -q && {git} add -A && {git} commit -qm 'manifests on the host'")


def test_the_platform_service_runs_unprivileged_behind_nginx(host, data: dict[str, Any]) -> None:
    user, unit = data["platform_user"], "nextmavens-platform.service"
    assert host.service(unit).is_running and host.service(unit).is_enabled
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}").strip()
    assert pid != "0"
    assert host.check_output(f"stat -c %U /proc/{pid}") == user  # the process's owner, not root
    account = host.user(user)
    assert account.shell == "/usr/sbin/nologin" and account.groups == [user], account.groups
    # sudo lets it run the privileged command's exact shapes (templates/sudoers/platform.j2), nothing else
    allowed = host.check_output(f"sudo -l -U {user}")
    command = f"{data['platform_dir']}/bin/nextmavens-privileged"
    shapes = ["apply --yes --json", "container-logs *", "deploy *", "domains *", "studio *", "releases *"]
    assert [shape for shape in shapes if f"{command} {shape}" not in allowed] == [], allowed
    assert allowed.count(command) == len(shapes), allowed
    assert "NOPASSWD: ALL" not in allowed and allowed.count("NOPASSWD") == 1, allowed
    # its PostgreSQL sessions are its own role's, no superuser's (its pool keeps one open); its pgpass names that role
    sessions = _psql(
        host,
        data,
        "postgres",
        "SELECT DISTINCT a.usename || ' ' || r.rolsuper FROM pg_stat_activity a"
        " JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name = 'nextmavens-platform'",
    )
    assert sessions.splitlines() == ["nextmavens_platform false"], sessions
    assert host.check_output(f"cut -d: -f4 /etc/{user}/pgpass") == "nextmavens_platform"
    # /healthz through nginx by its name; plain HTTP carries nothing else (no certificate here: no token in clear)
    name = data["platform_service_domain"]
    health = host.check_output(f"curl -sS -m 10 -H 'Host: {name}' http://127.0.0.1/healthz")
    assert json.loads(health) == {"status": "ok"}
    refused = host.check_output(
        f"curl -sS -m 10 -o /dev/null -w '%{{http_code}}' -H 'Host: {name}' http://127.0.0.1/v1/me"
    )
    assert refused == "503"


def test_a_project_created_through_the_service_is_applied_by_the_root_unit(host, data: dict[str, Any]) -> None:
    from shlex import quote

    _platform_repository(host, data)
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    token = json.loads(
        host.check_output(
            f"{wrapper} nextmavens token create --member ana@acme.example --org acme --expires 1d --json"
        )
    )["token"]
    body = json.dumps({"org": "acme", "ref": "ledger", "name": "Ledger", "site_url": "https://ledger.example"})
    port = data["loopback_ports"]["platform"]
    answer = host.run(
        f"curl -sS -m 600 -w '\\n%{{http_code}}' -H 'Authorization: Bearer {token}' "
        f"-H 'Content-Type: application/json' --data {quote(body)} http://127.0.0.1:{port}/v1/projects"
    )
    text, _, status = answer.stdout.rpartition("\n")
    assert status == "201", answer.stdout[-3000:] + answer.stderr[-2000:]
    created = json.loads(text)
    assert created["project"]["applied_state"] == "active" and created["commit"]
    # the root unit's apply had the edge config: the project's containers, Kong and nginx followed
    assert created["edge_converged"] is True and created["warning"] is None, created
    assert "ledger" in _psql(host, data, "postgres", "SELECT datname FROM pg_database").splitlines()
    # the run is the root unit's (its actor), not an apply inside the service's process
    runs = _psql(host, data, "nextmavens", "SELECT id || ' ' || actor FROM apply_runs ORDER BY id DESC LIMIT 20")
    assert f"{int(created['apply']['run'])} platform-service" in runs.splitlines(), runs
    assert host.check_output("systemctl show -p Result --value nextmavens-platform-apply.service") == "success"
    git = f"runuser -u {data['platform_user']} -- git -C {quote(data['projects_dir'])}"
    assert host.check_output(f"{git} log -1 --format=%an") == "ana@acme.example"


def test_whatsapp_pairs_and_sends_through_the_cli_and_the_service(host, data: dict[str, Any]) -> None:
    """`whatsapp connect` on the host pairs acme/shop's `orders` with the Evolution STAND-IN (its phone scans after
    a few connect calls), `whatsapp send` sends through it, and the platform service, with its own copy of
    Evolution's key, reports the paired phone and sends too."""
    wrapper = f"{data['platform_dir']}/bin/nextmavens-env"
    paired = host.run(f"{wrapper} nextmavens whatsapp connect acme/shop orders --timeout 60")
    assert paired.rc == 0, paired.stdout[-2000:] + paired.stderr[-2000:]
    assert "Scan with WhatsApp" in paired.stdout and "acme/shop orders is connected: +" in paired.stdout
    sent = host.run(f"{wrapper} nextmavens whatsapp send acme/shop orders 5511987654321 'sent from the host'")
    assert sent.rc == 0 and sent.stdout.strip(), sent.stderr
    token = json.loads(
        host.check_output(
            f"{wrapper} nextmavens token create --member ana@acme.example --project acme/shop --expires 1d --json"
        )
    )["token"]
    base = f"http://127.0.0.1:{data['loopback_ports']['platform']}/v1/projects/acme/shop/whatsapp/orders"
    auth = f"-H 'Authorization: Bearer {token}'"
    status = json.loads(host.check_output(f"curl -sS -m 30 {auth} {base}/status"))
    assert status["state"] == "open" and status["number"], status
    answer = host.run(
        f"curl -sS -m 30 -w '\\n%{{http_code}}' {auth} -H 'Content-Type: application/json' "
        f"""--data '{{"number": "5511987654321", "text": "sent by the service"}}' {base}/messages"""
    )
    text, _, code = answer.stdout.rpartition("\n")
    assert code == "201" and json.loads(text)["message_id"], answer.stdout + answer.stderr


def test_postgres_meta_with_the_gates_owner_connection_sees_one_project(host, data: dict[str, Any]) -> None:
    """Studio for a project: the connection the platform gives postgres-meta (studiogate.owner_connection,
    encrypted as studiogate.cryptojs_encrypt does) makes the real 0.91.6 work as the project's owner role, in its
    database."""
    from shlex import quote
    from urllib.parse import unquote, urlsplit

    from nextmavens.naming import project_names
    from nextmavens.platform.studiogate import cryptojs_encrypt, owner_connection

    password = unquote(urlsplit(_keys(host, data, "acme/shop")["database_url"]).password or "")
    crypto_key = host.check_output("docker exec nextmavens-meta printenv CRYPTO_KEY")
    env = host.check_output("docker exec nextmavens-meta printenv PG_META_DB_HOST PG_META_DB_PORT").split()
    shop = project_names("shop")
    connection = owner_connection(env[0], int(env[1]), "shop", password)
    port = data["loopback_ports"]["postgres_meta"]

    def ask(header: str, path: str, body: str | None = None) -> tuple[int, str]:
        post = f"-X POST -H 'content-type: application/json' --data {quote(body)} " if body else ""
        out = host.run(
            f"curl -sS -m 60 {post}-H {quote('x-connection-encrypted: ' + header)} -o /tmp/nm-meta-studio "
            f"-w '%{{http_code}}' http://127.0.0.1:{port}{path}; cat /tmp/nm-meta-studio; rm -f /tmp/nm-meta-studio"
        )
        assert out.stdout[:3].isdigit(), out.stderr[-300:]
        return int(out.stdout[:3]), out.stdout[3:]

    header = cryptojs_encrypt(connection, crypto_key.strip())
    sql = (
        "SELECT current_user AS who, current_database() AS db,"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super"
    )
    query = json.dumps({"query": sql})
    status, body = ask(header, "/query", query)
    assert status == 200, body[:300]
    assert json.loads(body) == [{"who": shop.owner, "db": shop.database, "super": False}]
    status, body = ask(header, "/schemas")
    assert status == 200 and "catalog" in {s["name"] for s in json.loads(body)}, body[:300]
    # The same owner into another project's database: refused by PostgreSQL (no CONNECT), not served.
    crm = project_names("crm")
    foreign = cryptojs_encrypt(connection.replace(f"/{shop.database}?", f"/{crm.database}?"), crypto_key.strip())
    status, body = ask(foreign, "/query", json.dumps({"query": "SELECT 1"}))
    assert status != 200 and "permission denied" in body, body[:300]
