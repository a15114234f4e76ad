"""Converge timings on the sandbox host.

Boots a fresh sandbox (`sandbox up`), runs `pyinfra inventory.py deploys/site.py` twice and prints the
first converge time, the no-op converge time, the operations the no-op run changed and the number of
remote commands it ran (pyinfra -vv prints one `>>>` line per command it executes on the host, facts
included; file uploads over SFTP are not commands and are not counted). The sandbox is stopped at the end
unless --keep. The last line is machine-readable:

    noop_s=<seconds> changes=<n> remote_commands=<n>

Run as root from the repository root: python benchmarks/site.py [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SANDBOX = [sys.executable, "-m", "devkit.sandbox.cli"]
PYINFRA = [sys.executable, "-c", "import sys; from pyinfra_cli.main import main; sys.exit(main())"]
NOOP_TARGET_S = 30.0


def sandbox(*args: str) -> str:
    proc = subprocess.run([*SANDBOX, *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"sandbox {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def converge(env: dict[str, str]) -> tuple[float, list[str], int]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [*PYINFRA, "-y", "-vv", "--json", "inventory.py", "deploys/site.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        sys.exit(f"converge failed after {seconds:.1f}s:\n{tail}")
    ops = json.loads(proc.stdout)["results"]["operations"]
    changed = [op["name"] for op in ops if op["success"]]
    remote = sum(1 for line in proc.stderr.splitlines() if ">>>" in line)
    return seconds, changed, remote


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse", action="store_true", help="use the running sandbox as is (no fresh guest)")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    args = ap.parse_args()

    t0 = time.monotonic()
    if not args.reuse:
        sandbox("down")
    exports = sandbox("up", "--env-only")
    up_s = time.monotonic() - t0
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_PROD_")}
    for line in exports.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0]
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        first_s, first_changed, first_remote = converge(env)
        noop_s, noop_changed, noop_remote = converge(env)
    finally:
        if not args.keep:
            sandbox("down")
    print(f"sandbox up: {up_s:.1f}s{' (reused)' if args.reuse else ''}")
    print(f"first converge: {first_s:.1f}s, {len(first_changed)} changed, {first_remote} remote commands")
    print(f"no-op converge: {noop_s:.1f}s (target <= {NOOP_TARGET_S:.0f}s), {len(noop_changed)} changed")
    for name in noop_changed:
        print(f"  changed on the no-op run: {name}")
    print(f"noop_s={noop_s:.1f} changes={len(noop_changed)} remote_commands={noop_remote}")


if __name__ == "__main__":
    main()
