"""A laptop's install: the built wheel into a fresh virtual environment, run with a PATH that holds nothing but
that environment (so no PostgreSQL client, no docker), lists the developer commands and reaches for the API."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from tests.support.repo import REPO


def test_the_wheel_runs_the_developer_commands_without_host_tools(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(REPO / "nextmavens", src / "nextmavens", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    built = subprocess.run([*build, str(src)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("nextmavens-*.whl")

    laptop = tmp_path / "laptop"
    venv.create(laptop, with_pip=True)
    bin_dir = laptop / "bin"
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr[-2000:]

    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    assert shutil.which("psql", path=env["PATH"]) is None and shutil.which("docker", path=env["PATH"]) is None

    def nextmavens(*args: str, env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nextmavens", *args], env=env, capture_output=True, text=True, check=False, cwd=tmp_path)

    helped = nextmavens("--help")
    assert helped.returncode == 0, helped.stderr
    listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("  ") and line.split()}
    developer = {"login", "logout", "whoami", "projects", "project", "link", "create-project", "db", "logs"}
    assert developer | {"whatsapp"} <= listed
    assert "connect" in nextmavens("whatsapp", "--help").stdout

    # Not logged in: the documented exit code and what to do; then the API client itself, against a closed port.
    missing = nextmavens("projects", "--json")
    assert (missing.returncode, missing.stdout) == (3, "") and "nextmavens login" in missing.stderr
    closed = {**env, "NEXTMAVENS_URL": "http://127.0.0.1:25402", "NEXTMAVENS_TOKEN": "nmp_x"}
    refused = nextmavens("whoami", env=closed)
    assert refused.returncode == 4 and "http://127.0.0.1:25402" in refused.stderr
    (tmp_path / ".nextmavens").mkdir()
    (tmp_path / ".nextmavens" / "project").write_text("acme/shop\n")
    for shared in (["db", "migrations"], ["db:migrate", "--dry-run"], ["logs"]):  # the linked project, over the API
        answer = nextmavens(*shared, env=closed)
        assert answer.returncode == 4 and "http://127.0.0.1:25402" in answer.stderr, (shared, answer.stderr)
