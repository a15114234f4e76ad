"""Small process helpers shared by the sandbox modules."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time


def log(msg: str) -> None:
    print(f"[sandbox {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class CommandError(RuntimeError):
    pass


def run(
    argv: list[str],
    *,
    check: bool = True,
    quiet: bool = False,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(argv, input=input, capture_output=True, env=env)
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        tail = "\n".join(out.splitlines()[-30:])
        raise CommandError(f"command failed ({proc.returncode}): {shlex.join(argv)}\n{tail}")
    if not quiet and proc.stderr and proc.returncode != 0:
        log(proc.stderr.decode(errors="replace").strip())
    return proc
