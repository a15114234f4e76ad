"""Custom facts parse real command output: run here where the command can run (Debian 12 with ufw
installed, never enabled), or a sample captured from a real host otherwise."""

import shutil
import subprocess
from pathlib import Path

import pytest

from nextmavens.host import facts

SECTION = "--nextmavens-section--"


def run(command: str) -> list[str]:
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_os_release_from_this_machine() -> None:
    fact = facts.OsRelease()
    parsed = fact.process(run(fact.command()))
    assert parsed["ID"] in {"debian", "ubuntu"} and parsed["VERSION_ID"]


def test_os_release_ubuntu_sample() -> None:
    sample = [
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"',
        'NAME="Ubuntu"',
        'VERSION_ID="24.04"',
        "VERSION_CODENAME=noble",
        "ID=ubuntu",
        "ID_LIKE=debian",
    ]
    parsed = facts.OsRelease().process(sample)
    assert (parsed["ID"], parsed["VERSION_ID"], parsed["VERSION_CODENAME"]) == ("ubuntu", "24.04", "noble")


@pytest.mark.skipif(shutil.which("ufw") is None, reason="apt-get install ufw (it is never enabled here)")
def test_ufw_state_from_real_inactive_ufw() -> None:
    fact = facts.UfwState()
    parsed = fact.process(run(fact.command()))
    assert parsed["active"] is False
    assert parsed["defaults"] == {"incoming": "deny", "outgoing": "allow"}
    assert isinstance(parsed["rules"], list)


# Captured from ufw 0.36.2 on Debian: rules added while inactive, and an active firewall.
UFW_INACTIVE = [
    "Status: inactive",
    SECTION,
    "Added user rules (see 'ufw status' for running firewall):",
    "ufw allow 22/tcp",
    "ufw allow 443/tcp",
    "ufw allow 53/udp",
    SECTION,
    'DEFAULT_INPUT_POLICY="DROP"',
    'DEFAULT_OUTPUT_POLICY="ACCEPT"',
    'DEFAULT_FORWARD_POLICY="DROP"',
    'DEFAULT_APPLICATION_POLICY="SKIP"',
]
UFW_ACTIVE = [
    "Status: active",
    "Logging: on (low)",
    "Default: deny (incoming), allow (outgoing), deny (routed)",
    "New profiles: skip",
    "",
    "To                         Action      From",
    "--                         ------      ----",
    "22/tcp                     ALLOW IN    Anywhere",
    "80/tcp                     ALLOW IN    Anywhere",
    "22/tcp (v6)                ALLOW IN    Anywhere (v6)",
    "80/tcp (v6)                ALLOW IN    Anywhere (v6)",
    SECTION,
    "Added user rules (see 'ufw status' for running firewall):",
    "ufw allow 22/tcp",
    "ufw allow 80/tcp",
    SECTION,
    'DEFAULT_INPUT_POLICY="DROP"',
    'DEFAULT_OUTPUT_POLICY="ACCEPT"',
]


def test_ufw_state_samples() -> None:
    inactive = facts.UfwState().process(UFW_INACTIVE)
    assert inactive == {
        "active": False,
        "rules": ["allow 22/tcp", "allow 443/tcp", "allow 53/udp"],
        "defaults": {"incoming": "deny", "outgoing": "allow"},
    }
    active = facts.UfwState().process(UFW_ACTIVE)
    assert active["active"] is True and active["rules"] == ["allow 22/tcp", "allow 80/tcp"]


def test_ufw_no_rules() -> None:
    parsed = facts.UfwState().process(
        ["Status: inactive", SECTION, "Added user rules (see 'ufw status' for running firewall):", "(None)"]
    )
    assert parsed == {"active": False, "rules": [], "defaults": {}}


def test_compose_state_sample() -> None:
    # `docker compose config --hash '*'` prints "<service> <hash>"; docker ps prints our format.
    output = [
        "db 9f1c0e8a1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcd",
        "kong 1111111111111111111111111111111111111111111111111111111111111111",
        SECTION,
        "db 9f1c0e8a1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcd running",
        "kong 2222222222222222222222222222222222222222222222222222222222222222 exited",
    ]
    parsed = facts.ComposeState().process(output)
    assert parsed["want"]["kong"].startswith("1111")
    assert parsed["have"]["kong"] == ("2" * 64, "exited")


def test_compose_state_before_anything_exists() -> None:
    assert facts.ComposeState().process([SECTION]) == {"want": {}, "have": {}}


def test_compose_state_command_quotes_and_never_fails() -> None:
    command = facts.ComposeState().command("/opt/nextmavens/stacks/redis", "nextmavens-redis", "/etc/s.env")
    assert command.endswith("; true")
    assert "--hash '*'" in command and "label=com.docker.compose.project=nextmavens-redis" in command
    # Runs cleanly on a machine without compose files (and without a docker daemon).
    assert SECTION in run(command)


def test_secret_file_keys_never_reads_values(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("POSTGRES_PASSWORD=abc123\nREDIS_PASSWORD=def456\n")
    path.chmod(0o600)
    fact = facts.SecretFileKeys()
    parsed = fact.process(run(fact.command(path=str(path))))
    assert parsed == {
        "exists": True,
        "mode": "600",
        "owner": "root",
        "keys": ["POSTGRES_PASSWORD", "REDIS_PASSWORD"],
    }
    assert "abc123" not in repr(parsed)
    assert fact.process(run(fact.command(path=str(tmp_path / "none")))) == {"exists": False, "keys": []}


def test_swap_state_from_this_machine(tmp_path: Path) -> None:
    swapfile = tmp_path / "swapfile"
    swapfile.write_bytes(b"\0" * 4096)
    fact = facts.SwapState()
    parsed = fact.process(run(fact.command(path=str(swapfile))))
    assert parsed["ram_mb"] > 0 and parsed["size_bytes"] == 4096
    assert isinstance(parsed["active"], list)


def test_postgres_objects_sample_and_absent_container() -> None:
    parsed = facts.PostgresObjects().process(
        ["role postgres", "role evolution", "database evolution", "schema public", "schema _realtime"]
    )
    assert parsed == {
        "roles": ["postgres", "evolution"],
        "databases": ["evolution"],
        "schemas": ["public", "_realtime"],
    }
    command = facts.PostgresObjects().command(
        container="nextmavens-postgres",
        admin_user="postgres",
        database="postgres",
        secrets_file="/etc/nextmavens/secrets.env",
        admin_password_env="POSTGRES_PASSWORD",
    )
    assert command.endswith("; true") and "-e PGPASSWORD nextmavens-postgres psql -h 127.0.0.1" in command
    # No container here: the command still exits 0 with no output (and never fails the host).
    assert run(command) == []


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "marker"
    path.write_text("abc\n")
    sha = facts.FileSha256()
    assert sha.process(run(sha.command(path=str(path)))) == (
        "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
    )
    assert sha.process(run(sha.command(path=str(tmp_path / "missing")))) == ""


def test_docker_networks_sample() -> None:
    assert facts.DockerNetworks().process(["bridge", "host", "nextmavens", "none"]) == [
        "bridge",
        "host",
        "nextmavens",
        "none",
    ]


def test_managed_units_sample() -> None:
    output = ["nextmavens-reconcile.service", "nextmavens-reconcile.timer", "nextmavens-x.service.d"]
    assert facts.ManagedUnits().process(output) == [
        "nextmavens-reconcile.service",
        "nextmavens-reconcile.timer",
    ]


def test_python_target_of_this_machine_and_without_python3() -> None:
    fact = facts.PythonTarget()
    found = fact.process(run(fact.command()))
    assert set(found) == {"version", "machine", "glibc"} and found["version"].startswith("3.")
    assert fact.process(["3 13 x86_64 glibc 2.41"]) == {"version": "3.13", "machine": "x86_64", "glibc": "2.41"}
    assert fact.process([]) == {} and fact.process(["3 12 x86_64 musl 1.2"]) == {}
