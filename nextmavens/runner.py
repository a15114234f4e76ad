"""How the product runs an external command: argv in (never a shell), the finished process out, output
captured as text. Code that builds argv takes a `Runner` so tests record the commands instead."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from typing import Any

Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def run_command(
    argv: list[str], *, timeout: float = 60, env: Mapping[str, str] | None = None, as_uid: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run to the end (or `timeout`, TimeoutExpired) with no stdin; a non-zero exit is the caller's to judge.
    `as_uid` (root callers only): run as that user, its primary group and no other group."""
    return subprocess.run(  # noqa: S603 - argv list, no shell
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
        **identity(as_uid),
    )


def identity(uid: int | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `uid`, its primary group and no other (None: as the caller)."""
    if uid is None:
        return {}
    import pwd

    return {"user": uid, "group": pwd.getpwuid(uid).pw_gid, "extra_groups": []}
