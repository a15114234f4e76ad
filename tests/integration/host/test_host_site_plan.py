"""deploys/site.py planned by the real pyinfra CLI against a @fake host (no connection anywhere):
the whole deploy prepares, tasks run in order, and the preflight stops bad hosts before any change."""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devkit.sandbox.manifests import seed_manifests
from nextmavens.host.publish import SECTION
from tests.support.repo import REPO

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available

DEBIAN_13 = [
    "ID=debian",
    'VERSION_ID="13"',
    "VERSION_CODENAME=trixie",
    'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"',
]
UBUNTU_22 = ["ID=ubuntu", 'VERSION_ID="22.04"', "VERSION_CODENAME=jammy", 'PRETTY_NAME="Ubuntu 22.04.4 LTS"']


def pyinfra(
    tmp_path: Path,
    os_release: list[str],
    *args: str,
    with_cli: bool = True,
    group: str = "sandbox",
    requires: str = "fastapi>=0.110",
    host_manifests: list[str] | None = None,
) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.py"
    # server.user(system=True) asks the kernel's name, and then whether useradd exists
    responses = {
        "/etc/os-release": os_release,
        "platform.libc_ver()": "3 13 x86_64 glibc 2.41",  # the PythonTarget fact's answer
        re.compile("^uname -s$"): ["Linux"],
        re.compile("^command -v useradd"): ["/usr/sbin/useradd"],
    }
    if host_manifests is not None:  # what the ManifestRepoState fact reads on the host
        responses[re.compile(r"^if \[ ! -e /opt/nextmavens/projects \]")] = host_manifests
    fake = {"fake_delay": 0, "fake_responses": responses}
    inventory.write_text(f"import re\n{group} = [('@fake/{group}-1', {fake!r})]\n")
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    wheel = tmp_path / "nextmavens-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:  # only uploaded (to nowhere) in this test
        archive.writestr("nextmavens/__init__.py", "")
        # the deploy checks the lock against these (requirements/host.lock pins fastapi)
        metadata = f"Metadata-Version: 2.1\nName: nextmavens\nVersion: 0.0.0\nRequires-Dist: {requires}\n"
        archive.writestr("nextmavens-0.0.0.dist-info/METADATA", metadata)
        if with_cli:
            archive.writestr("nextmavens/cli.py", "")
            archive.writestr("nextmavens/doctor/cli.py", "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")}
    env.update(NEXTMAVENS_SANDBOX_KEY=str(key), PYINFRA_FAKE_DELAY="0")
    env.update(NEXTMAVENS_DOMAIN="example.com", NEXTMAVENS_ADMIN_EMAIL="ops@example.com")
    env.update(NEXTMAVENS_ADMIN_PUBKEYS=str(key.with_suffix(".pub")))
    manifests = tmp_path / "manifests"
    seed_manifests(REPO / "projects", manifests)  # the operator's manifest repository, as `sandbox up` seeds it
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pyinfra",
            str(inventory),
            "deploys/site.py",
            "--data",
            f"nextmavens_wheel={wheel}",
            "--data",
            "nextmavens_deps_from=pypi",  # a plan fetches no wheels (the wheelhouse is tests/unit/host's)
            "--data",
            f"manifest_source={manifests}",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_site_plans_every_task_in_order(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, DEBIAN_13, "--dry", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    names = [op["name"] for op in json.loads(result.stdout)["plan"]]
    tasks = list(dict.fromkeys(name.split(" | ")[0] for name in names))
    assert tasks == [
        "Preflight",
        "Base system",
        "Firewall",
        "SSH hardening",
        "Docker",
        "nginx",
        "certbot",
        "Shared stacks",
        "nextmavens on the host",
        "Platform service user",
        "Manifest repository",
        "Edge settings",
        "Apply project manifests",
        "The platform service",
        "Summary",
        "Doctor",
    ]
    assert names[0] == "Preflight | Check the OS release is supported"
    published = [n for n in names if n.startswith("Manifest repository | Publish manifests ")]
    assert len(published) == 1 and published[0].endswith("to /opt/nextmavens/projects (fast-forward only)")
    assert any("SUBSTITUTE images" in name for name in names)
    stacks = [n for n in names if n.startswith("Shared stacks |") and "compose up" in n]
    assert [n.split(" | ")[1].split(":")[0] for n in stacks] == ["supabase", "redis", "evolution"]
    applies = [n for n in names if n.startswith("Apply project manifests |")]
    assert len(applies) == 1 and applies[0].startswith(
        "Apply project manifests | nextmavens apply --projects DIR --yes"
    )
    # The doctor runs last; at prepare it is no change (it runs the checks at execute time, after every step).
    assert names[-1].startswith("Doctor | nextmavens doctor: every service answers")
    assert [n for n in names if n.startswith("Summary |")][0].startswith(
        "Summary | Services on loopback only: postgres 127.0.0.1:5432"
    )


UBUNTU_24 = ["ID=ubuntu", 'VERSION_ID="24.04"', "VERSION_CODENAME=noble", 'PRETTY_NAME="Ubuntu 24.04.1 LTS"']


def test_production_on_ubuntu_uses_dockers_signed_repository(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, UBUNTU_24, "--dry", "--json", group="production")
    assert result.returncode == 0, result.stderr[-2000:]
    names = [op["name"] for op in json.loads(result.stdout)["plan"]]
    docker = [n.split(" | ")[1] for n in names if n.startswith("Docker |")]
    assert docker[:4] == [
        "Docker's apt signing key",
        "Docker's apt repository (signed-by)",
        "Refresh apt for Docker's repository",
        "Install Docker Engine and compose v2",
    ]
    assert not any("SUBSTITUTE" in n for n in names)


def test_apply_is_skipped_loudly_when_the_build_has_no_cli(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, DEBIAN_13, "--dry", "--json", with_cli=False)
    assert result.returncode == 0, result.stderr[-2000:]
    names = [op["name"] for op in json.loads(result.stdout)["plan"]]
    applies = [n for n in names if n.startswith("Apply project manifests |")]
    assert applies[0].startswith("Apply project manifests | SKIPPED nextmavens apply")


def test_unsupported_os_stops_before_any_operation(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, UBUNTU_22, "-y")
    output = result.stdout + result.stderr
    assert "unsupported OS 'Ubuntu 22.04.4 LTS'" in output and "nothing was run" in output
    assert "Beginning operation run" not in output and "Starting operation" not in output


def test_invalid_override_is_refused_before_any_operation(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, DEBIAN_13, "-y", "--data", "ssh_port=notaport")
    output = result.stdout + result.stderr
    assert "host data is invalid" in output and "'ssh_port'" in output


def test_a_manifest_source_that_is_no_repository_stops_before_any_operation(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, DEBIAN_13, "-y", "--data", "manifest_source=projects")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "is not the root of a git repository" in output and "nothing was run" in output
    assert "Starting operation" not in output


def test_host_commits_the_operator_lacks_stop_the_deploy_before_any_operation(tmp_path: Path) -> None:
    service = "f" * 40
    state = ["repository", service, SECTION, SECTION, f"{service} fffffff ann@example.com: Add crm"]
    result = pyinfra(tmp_path, DEBIAN_13, "-y", host_manifests=state)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "has commits that" in output and "fffffff ann@example.com: Add crm" in output
    assert "git pull '--upload-pack=git -c safe.directory=/opt/nextmavens/projects/.git upload-pack'" in output
    assert "Starting operation" not in output


def test_real_inventory_loads_without_hosts() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")}
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "inventory.py", "debug-inventory"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_wheel_the_lock_does_not_satisfy_stops_the_deploy_with_the_fix(tmp_path: Path) -> None:
    result = pyinfra(tmp_path, DEBIAN_13, "--dry", requires="fastapi>=99")
    assert result.returncode != 0
    assert "requirements/host.lock does not satisfy" in result.stderr + result.stdout
    assert "is outside 'fastapi>=99'" in result.stderr + result.stdout
    assert "scripts/lock-host-deps" in result.stderr + result.stdout
