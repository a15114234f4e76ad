"""Custom operations yield nothing when the facts already match, and exactly the missing commands
when they do not (pyinfra's own operation tests, by hand: facts in, commands out)."""

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from pyinfra.api import FileUploadCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.context import ctx_host

from nextmavens.host import facts, operations


class FakeHost:
    name = "fake-host"

    def __init__(self, fact_values: dict[type, Any]):
        self.fact_values = fact_values
        self.noops: list[str] = []
        self.fact_calls: list[tuple[type, dict]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        self.fact_calls.append((cls, kwargs))
        return self.fact_values[cls]

    def noop(self, description: str) -> None:
        self.noops.append(description)


def run_op(op: Callable, fact_values: dict[type, Any], **kwargs: Any) -> tuple[list, FakeHost]:
    fake = FakeHost(fact_values)
    with ctx_host.use(fake):
        commands = [str(c) if isinstance(c, str) else c for c in op._inner(**kwargs)]
    return commands, fake


CONVERGED_UFW = {
    "active": True,
    "rules": ["allow 22/tcp", "allow 80/tcp", "allow 443/tcp"],
    "defaults": {"incoming": "deny", "outgoing": "allow"},
}
UFW_ARGS = {"ssh_port": 22, "allowed": ["80/tcp", "443/tcp"], "prune": True}


def test_ufw_converged_issues_no_command() -> None:
    commands, fake = run_op(operations.ufw_firewall, {facts.UfwState: CONVERGED_UFW}, **UFW_ARGS)
    assert commands == []
    assert fake.noops == ["ufw is active with exactly the declared rules"]


def test_ufw_fresh_host_allows_ssh_before_enabling() -> None:
    fresh = {"active": False, "rules": [], "defaults": {"incoming": "deny", "outgoing": "allow"}}
    commands, _ = run_op(operations.ufw_firewall, {facts.UfwState: fresh}, **UFW_ARGS)
    assert commands == [
        "ufw allow 22/tcp",
        "ufw allow 80/tcp",
        "ufw allow 443/tcp",
        "ufw --force enable",
    ]


def test_ufw_only_the_missing_rule_and_the_unknown_one() -> None:
    state = {**CONVERGED_UFW, "rules": ["allow 22/tcp", "allow 443/tcp", "allow 8080/tcp"]}
    commands, _ = run_op(operations.ufw_firewall, {facts.UfwState: state}, **UFW_ARGS)
    assert commands == ["ufw allow 80/tcp", "ufw delete allow 8080/tcp"]


def test_ufw_keeps_unknown_rules_without_prune_and_fixes_defaults() -> None:
    state = {**CONVERGED_UFW, "rules": [*CONVERGED_UFW["rules"], "allow 9000/tcp"], "defaults": {}}
    commands, _ = run_op(operations.ufw_firewall, {facts.UfwState: state}, **{**UFW_ARGS, "prune": False})
    assert commands == ["ufw default deny incoming", "ufw default allow outgoing"]


def test_ufw_custom_ssh_port_is_allowed_first() -> None:
    fresh = {
        "active": False,
        "rules": ["allow 22/tcp"],
        "defaults": {"incoming": "deny", "outgoing": "allow"},
    }
    commands, _ = run_op(
        operations.ufw_firewall, {facts.UfwState: fresh}, ssh_port=2222, allowed=["443/tcp"], prune=True
    )
    assert commands == [
        "ufw allow 2222/tcp",
        "ufw allow 443/tcp",
        "ufw delete allow 22/tcp",
        "ufw --force enable",
    ]


COMPOSE_ARGS = {"directory": "/opt/nextmavens/stacks/redis", "project": "nextmavens-redis", "env_file": "/e"}
UP = (
    "docker compose --project-directory /opt/nextmavens/stacks/redis -p nextmavens-redis --env-file /e "
    "-f /opt/nextmavens/stacks/redis/compose.yaml config --quiet && "
    "docker compose --project-directory /opt/nextmavens/stacks/redis -p nextmavens-redis --env-file /e "
    "-f /opt/nextmavens/stacks/redis/compose.yaml up -d --remove-orphans"
)


def test_compose_matching_containers_issue_nothing() -> None:
    state = {"want": {"redis": "h1"}, "have": {"redis": ("h1", "running")}}
    commands, fake = run_op(operations.compose_up, {facts.ComposeState: state}, **COMPOSE_ARGS)
    assert commands == [] and fake.noops == ["compose project nextmavens-redis runs its rendered files"]


@pytest.mark.parametrize(
    "state",
    [
        {"want": {"redis": "h2"}, "have": {"redis": ("h1", "running")}},  # rendered file changed
        {"want": {"redis": "h1"}, "have": {"redis": ("h1", "exited")}},  # stopped container
        {"want": {"redis": "h1"}, "have": {}},  # removed container
        {"want": {"redis": "h1"}, "have": {"redis": ("h1", "running"), "old": ("x", "running")}},
        {"want": {}, "have": {}},  # first run: nothing to compare yet
    ],
)
def test_compose_drift_validates_then_ups(state: dict) -> None:
    commands, _ = run_op(operations.compose_up, {facts.ComposeState: state}, **COMPOSE_ARGS)
    assert commands == [UP]


def test_secrets_complete_file_issues_nothing() -> None:
    state = {"exists": True, "mode": "600", "owner": "root", "keys": ["A", "B"]}
    commands, _ = run_op(
        operations.secrets_file, {facts.SecretFileKeys: state}, path="/etc/n/s.env", wanted={"A": 32, "B": 16}
    )
    assert commands == []


def test_secrets_only_missing_keys_and_no_value_in_commands() -> None:
    state = {"exists": True, "mode": "644", "owner": "root", "keys": ["A"]}
    commands, _ = run_op(
        operations.secrets_file, {facts.SecretFileKeys: state}, path="/etc/n/s.env", wanted={"A": 32, "B": 16}
    )
    assert commands == [
        "chown root:root /etc/n/s.env && chmod 0600 /etc/n/s.env",
        '(umask 077 && printf "%s=%s\\n" B "$(od -An -tx1 -N16 /dev/urandom | tr -d \' \\n\')" >> /etc/n/s.env)',
    ]


def test_swap_sized_for_host_and_converged() -> None:
    state = {"ram_mb": 7936, "active": ["/swapfile"], "size_bytes": 3968 * 1024 * 1024}
    commands, fake = run_op(operations.swap_file, {facts.SwapState: state}, path="/swapfile", size_mb=-1)
    assert commands == [] and fake.noops == ["swap file /swapfile is 3968 MiB and active"]
    commands, _ = run_op(
        operations.swap_file, {facts.SwapState: {**state, "size_bytes": 0, "active": []}}, path="/swapfile"
    )
    assert commands and "fallocate -l 3968M /swapfile" in commands[0]
    commands, _ = run_op(operations.swap_file, {facts.SwapState: {**state, "active": []}}, path="/swapfile")
    assert commands == ["swapon /swapfile"]


def test_swap_zero_means_none() -> None:
    state = {"ram_mb": 1024, "active": [], "size_bytes": 0}
    commands, _ = run_op(operations.swap_file, {facts.SwapState: state}, path="/swapfile", size_mb=0)
    assert commands == []


def test_docker_network() -> None:
    commands, _ = run_op(
        operations.docker_network, {facts.DockerNetworks: ["bridge", "nextmavens"]}, network="nextmavens"
    )
    assert commands == []
    commands, _ = run_op(operations.docker_network, {facts.DockerNetworks: ["bridge"]}, network="nextmavens")
    assert commands == ["docker network create --driver bridge nextmavens"]


PG_ARGS = {
    "container": "nextmavens-postgres",
    "admin_user": "postgres",
    "secrets_path": "/etc/nextmavens/secrets.env",
    "admin_password_env": "POSTGRES_PASSWORD",
}


def test_postgres_database_present_and_missing() -> None:
    args = {**PG_ARGS, "database": "evolution", "owner": "evolution", "password_env": "EVOLUTION_DB_PASSWORD"}
    present = {"roles": ["postgres", "evolution"], "databases": ["postgres", "evolution"], "schemas": []}
    commands, _ = run_op(operations.postgres_database, {facts.PostgresObjects: present}, **args)
    assert commands == []
    empty = {"roles": [], "databases": [], "schemas": []}
    commands, _ = run_op(operations.postgres_database, {facts.PostgresObjects: empty}, **args)
    assert len(commands) == 1
    command = commands[0]
    assert command.startswith(
        'set -a && . /etc/nextmavens/secrets.env && set +a && export PGPASSWORD="$POSTGRES_PASSWORD"'
    )
    assert "-e PGPASSWORD -e EVOLUTION_DB_PASSWORD nextmavens-postgres psql -h 127.0.0.1" in command
    assert "-v db=evolution -v owner=evolution" in command and "REVOKE ALL" in command


def test_postgres_missing_schema_on_a_shared_database() -> None:
    args = {
        **PG_ARGS,
        "database": "postgres",
        "owner": "postgres",
        "schemas": ["_realtime"],
        "private": False,
    }
    state = {"roles": ["postgres"], "databases": ["postgres"], "schemas": ["public"]}
    commands, _ = run_op(operations.postgres_database, {facts.PostgresObjects: state}, **args)
    assert len(commands) == 1 and "-v schema_0=_realtime" in commands[0]
    assert "REVOKE ALL" not in commands[0]  # never on a database others share
    state["schemas"].append("_realtime")
    assert run_op(operations.postgres_database, {facts.PostgresObjects: state}, **args)[0] == []


def test_sshd_dropin_unchanged_and_changed() -> None:
    content = "PasswordAuthentication no\n"
    digest = hashlib.sha256(content.encode()).hexdigest()
    path = "/etc/ssh/sshd_config.d/00-nextmavens.conf"
    commands, _ = run_op(operations.sshd_dropin, {facts.FileSha256: digest}, path=path, content=content)
    assert commands == []
    commands, _ = run_op(operations.sshd_dropin, {facts.FileSha256: ""}, path=path, content=content)
    upload, install = commands
    assert isinstance(upload, FileUploadCommand) and upload.dest == path + ".staged"
    assert "if sshd -t; then" in install and "try-reload-or-restart ssh.service" in install
    assert "restart ssh.service" not in install.replace("try-reload-or-restart ssh.service", "")


VENV_ARGS = {
    "venv": "/opt/nextmavens/venv",
    "builds_dir": "/opt/nextmavens/venvs",
    "wheel": "/opt/nextmavens/dist/n.whl",
    "wheel_sha256": "abc",
    "lock": "/opt/nextmavens/dist/host.lock",
    "lock_sha256": "def",
}
PYTHON_313 = {"version": "3.13", "machine": "x86_64", "glibc": "2.41"}


def _installed(python: str = "3.13") -> str:
    """The marker's sha256 as a venv installed from VENV_ARGS under `python` holds it."""
    digest = hashlib.sha256(f"abc\ndef\n{python}".encode()).hexdigest()
    return hashlib.sha256(f"{digest}\n".encode()).hexdigest()


def test_venv_locked_installs_once_per_wheel_lock_and_python() -> None:
    facts_now = {facts.PythonTarget: PYTHON_313, facts.FileSha256: _installed()}
    assert run_op(operations.venv_locked, facts_now, **VENV_ARGS)[0] == []
    # the host's Python changed (a release upgrade): the venv's interpreter is gone, so it is rebuilt
    changed = {facts.PythonTarget: {**PYTHON_313, "version": "3.14"}, facts.FileSha256: _installed()}
    assert run_op(operations.venv_locked, changed, **VENV_ARGS)[0] != []
    assert run_op(operations.venv_locked, facts_now, **{**VENV_ARGS, "lock_sha256": "new"})[0] != []


def test_venv_locked_builds_beside_then_swaps() -> None:
    commands, _ = run_op(operations.venv_locked, {facts.PythonTarget: PYTHON_313, facts.FileSha256: ""}, **VENV_ARGS)
    digest = hashlib.sha256(b"abc\ndef\n3.13").hexdigest()
    build = f"/opt/nextmavens/venvs/{digest[:16]}"
    create, deps, wheel, check, marker, swap = commands
    assert create == f"mkdir -p /opt/nextmavens/venvs && rm -rf {build} && python3 -m venv {build}"
    assert "--system-site-packages" not in create
    assert deps.startswith(f"{build}/bin/python -I -m pip install ")
    assert deps.endswith("--require-hashes --no-deps --requirement /opt/nextmavens/dist/host.lock")
    assert "--no-index" not in deps  # the host's own index
    assert wheel.endswith("--no-deps /opt/nextmavens/dist/n.whl")
    assert f"{build}/bin/python -I -m pip check" in check and f"{build}/bin/nextmavens --help" in check
    assert marker == f"echo {digest} > {build}/.nextmavens-install.sha256"
    # the live venv changes only in the last command, after every step above succeeded
    assert "ln -sfn" in swap and "mv -T /opt/nextmavens/venv.swap /opt/nextmavens/venv" in swap
    assert all("/opt/nextmavens/venv " not in c and not c.endswith("/opt/nextmavens/venv") for c in commands[:5])


def test_venv_locked_installs_from_uploaded_wheels_alone() -> None:
    fact_values = {facts.PythonTarget: PYTHON_313, facts.FileSha256: ""}
    commands, _ = run_op(operations.venv_locked, fact_values, **VENV_ARGS, find_links="/opt/nextmavens/wheelhouse")
    assert "--require-hashes --no-deps --no-index --find-links /opt/nextmavens/wheelhouse --requirement" in commands[1]


def test_engine_apply_runs_when_inputs_change() -> None:
    args = {
        "wrapper": "/opt/nextmavens/bin/nextmavens-env",
        "projects_dir": "/opt/nextmavens/projects",
        "marker": "/opt/nextmavens/.last-apply.sha256",
        "inputs_sha256": "abc",
    }
    commands, _ = run_op(operations.engine_apply, {facts.FileSha256: hashlib.sha256(b"abc\n").hexdigest()}, **args)
    assert commands == []
    commands, _ = run_op(operations.engine_apply, {facts.FileSha256: "old"}, **args)
    assert commands == [
        "/opt/nextmavens/bin/nextmavens-env nextmavens apply --projects /opt/nextmavens/projects --yes"
        " && echo abc > /opt/nextmavens/.last-apply.sha256"
    ]


@pytest.mark.parametrize(
    ("os_id", "version", "ok"),
    [
        ("ubuntu", "24.04", True),
        ("debian", "12", True),
        ("debian", "13", True),
        ("ubuntu", "22.04", False),
        ("debian", "11", False),
        ("centos", "9", False),
    ],
)
def test_supported_os(os_id: str, version: str, ok: bool) -> None:
    fact = {facts.OsRelease: {"ID": os_id, "VERSION_ID": version}}
    if ok:
        assert run_op(operations.supported_os, fact)[0] == []
    else:
        with pytest.raises(OperationError, match="unsupported OS"):
            run_op(operations.supported_os, fact)


def test_prune_units_removes_only_undeclared_ones() -> None:
    keep = ["nextmavens-reconcile.service", "nextmavens-reconcile.timer"]
    commands, _ = run_op(
        operations.prune_units, {facts.ManagedUnits: keep}, prefix="nextmavens-", marker="# m", keep=keep
    )
    assert commands == []
    present = [*keep, "nextmavens-old.service", "nextmavens-old.timer"]
    commands, _ = run_op(
        operations.prune_units, {facts.ManagedUnits: present}, prefix="nextmavens-", marker="# m", keep=keep
    )
    remove = "systemctl disable --now {0} 2>/dev/null; rm -f /etc/systemd/system/{0}"
    assert commands == [
        remove.format("nextmavens-old.service"),
        remove.format("nextmavens-old.timer"),
        "systemctl daemon-reload",
    ]
