"""Custom operations run for real by the pyinfra CLI against @local (paths under a temp directory):
the first run changes, the second reports zero changes, and no secret value reaches the output."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.repo import REPO

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available


def _tiny_wheel(directory: Path, name: str = "nmdemo", version: str = "0.1.0", requires: str = "") -> Path:
    """A minimal pure-Python wheel (built by hand: no network, no build backend)."""
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += f"Requires-Dist: {requires}\n" if requires else ""
    files = {
        f"{name}/__init__.py": f"VALUE = 42\nVERSION = {version!r}\n".encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lock(tmp_path: Path, wheel: Path, name: str = "lock.txt", digest: str = "") -> Path:
    """A lock pinning one dependency wheel by its hash (or by `digest`, to make the install fail)."""
    dist, version = wheel.name.split("-")[:2]
    lock = tmp_path / name
    lock.write_text(f"{dist}=={version} \\\n    --hash=sha256:{digest or _sha(wheel)}\n")
    return lock


def _run(deploy: Path) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "--json", "-vvv", "@local", str(deploy)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    start = result.stdout.index("{")
    return json.loads(result.stdout[start:]), result.stdout + result.stderr


def _venv_call(out: Path, wheel: Path, wheel_sha: str, lock: Path, wheels: Path) -> str:
    return (
        "from nextmavens.host.operations import venv_locked\n"
        f"venv_locked(name='venv', venv='{out}/venv', builds_dir='{out}/venvs', wheel='{wheel}',"
        f" wheel_sha256='{wheel_sha}', lock='{lock}', lock_sha256='{_sha(lock)}', find_links='{wheels}',"
        " check=('python', '-c', 'import nmdemo, nmdep'))"
    )


def test_operations_converge_then_change_nothing(tmp_path: Path) -> None:
    out = tmp_path / "host"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    dep = _tiny_wheel(wheels, "nmdep", "1.0")
    wheel = _tiny_wheel(tmp_path, requires="nmdep")
    wheel_sha = _sha(wheel)
    wrapper = tmp_path / "nextmavens-env"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/applied\n')
    wrapper.chmod(0o755)
    deploy = tmp_path / "deploy.py"
    deploy.write_text(
        "from nextmavens.host.operations import engine_apply, file_if_missing, secrets_file\n"
        f"secrets_file(name='secrets', path='{out}/etc/secrets.env', wanted={{'POSTGRES_PASSWORD': 32}})\n"
        f"file_if_missing(name='seed', path='{out}/kong/kong.yml', content='services: []\\n')\n"
        + _venv_call(out, wheel, wheel_sha, _lock(tmp_path, dep), wheels)
        + "\n"
        f"engine_apply(name='apply', wrapper='{wrapper}', projects_dir='{out}/projects',"
        f" marker='{out}/.last-apply.sha256', inputs_sha256='abc')\n"
    )
    first, first_output = _run(deploy)
    assert first["results"]["totals"]["success"] == 4  # pyinfra's "success" means "changed"
    second, second_output = _run(deploy)
    assert second["results"]["totals"]["success"] == 0 and second["results"]["totals"]["error"] == 0

    secret = (out / "etc/secrets.env").read_text().split("=", 1)[1].strip()
    assert len(secret) == 64 and secret not in first_output and secret not in second_output
    assert oct((out / "etc/secrets.env").stat().st_mode & 0o777) == "0o600"
    check = subprocess.run(
        [str(out / "venv/bin/python"), "-c", "import nmdemo, nmdep; print(nmdemo.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "42"
    assert (tmp_path / "applied").read_text() == f"nextmavens apply --projects {out}/projects --yes\n"
    # The engine's later rewrite of a seeded file is never reverted.
    (out / "kong/kong.yml").write_text("services: [rewritten]\n")
    third, _ = _run(deploy)
    assert third["results"]["totals"]["success"] == 0
    assert (out / "kong/kong.yml").read_text() == "services: [rewritten]\n"


def _venv_state(venv: Path) -> tuple[str, str]:
    """(the build the venv points at, nmdep's version imported there)."""
    probe = subprocess.run(
        [str(venv / "bin/python"), "-c", "import nmdep; print(nmdep.VERSION)"], capture_output=True, text=True
    )
    return os.readlink(venv) if venv.is_symlink() else "", probe.stdout.strip()


def test_locked_venv_replaces_a_system_site_venv_and_survives_a_failed_install(tmp_path: Path) -> None:
    """A venv an earlier release made (a directory, over the system's packages) becomes a symlink to a clean build;
    an install that fails (a hash the wheel does not have) leaves the live venv as it was; a new lock swaps in."""
    out = tmp_path / "host"
    out.mkdir()
    subprocess.run(["python3", "-m", "venv", "--system-site-packages", str(out / "venv")], check=True)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    dep1 = _tiny_wheel(wheels, "nmdep", "1.0")
    dep2 = _tiny_wheel(wheels, "nmdep", "2.0")
    wheel = _tiny_wheel(tmp_path, requires="nmdep")
    deploy = tmp_path / "deploy.py"

    def converge(lock: Path) -> subprocess.CompletedProcess[str]:
        deploy.write_text(_venv_call(out, wheel, _sha(wheel), lock, wheels) + "\n")
        return subprocess.run(
            [sys.executable, "-m", "pyinfra", "-y", "@local", str(deploy)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert converge(_lock(tmp_path, dep1, "v1.txt")).returncode == 0
    first, version = _venv_state(out / "venv")
    assert first.startswith(f"{out}/venvs/") and version == "1.0"
    assert "include-system-site-packages = false" in (out / "venv/pyvenv.cfg").read_text()
    (replaced,) = (out / "venvs").glob("replaced-*")  # the old venv, kept as the one to go back to

    failed = converge(_lock(tmp_path, dep2, "bad.txt", digest="0" * 64))
    assert failed.returncode != 0
    assert _venv_state(out / "venv") == (first, "1.0")

    assert converge(_lock(tmp_path, dep2, "v2.txt")).returncode == 0
    second, version = _venv_state(out / "venv")
    assert second != first and version == "2.0"
    # the live build and the one before it stay; older builds (the replaced directory, the failed one) go
    assert sorted(str(p) for p in (out / "venvs").iterdir()) == sorted([first, second])
    assert not replaced.exists()
