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



def _tiny_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel (built by hand: no network, no build backend)."""
    wheel = directory / "nmdemo-0.1.0-py3-none-any.whl"
    files = {
        "nmdemo/__init__.py": b"VALUE = 42\n",
        "nmdemo-0.1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: nmdemo\nVersion: 0.1.0\n",
        "nmdemo-0.1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("nmdemo-0.1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("nmdemo-0.1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


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


def test_operations_converge_then_change_nothing(tmp_path: Path) -> None:
    out = tmp_path / "host"
    wheel = _tiny_wheel(tmp_path)
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wrapper = tmp_path / "nextmavens-env"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/applied\n')
    wrapper.chmod(0o755)
    deploy = tmp_path / "deploy.py"
    deploy.write_text(
        "from nextmavens.host.operations import engine_apply, file_if_missing, secrets_file, venv_wheel\n"
        f"secrets_file(name='secrets', path='{out}/etc/secrets.env', wanted={{'POSTGRES_PASSWORD': 32}})\n"
        f"file_if_missing(name='seed', path='{out}/kong/kong.yml', content='services: []\\n')\n"
        f"venv_wheel(name='venv', venv='{out}/venv', wheel='{wheel}', wheel_sha256='{wheel_sha}',"
        " system_site_packages=True)\n"
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
        [str(out / "venv/bin/python"), "-c", "import nmdemo; print(nmdemo.VALUE)"],
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
