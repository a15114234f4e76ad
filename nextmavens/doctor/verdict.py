"""The deploy's reading of `nextmavens doctor --json` run on the host (tasks/doctor.py). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

EXIT_MARK = "nextmavens-doctor-exit="


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def verdict(lines: list[str]) -> Verdict:
    """Lines: the doctor's output (stdout and stderr), then `nextmavens-doctor-exit=<code>`."""
    code = None
    if lines and lines[-1].startswith(EXIT_MARK):
        code = int(lines[-1][len(EXIT_MARK) :] or "1")
        lines = lines[:-1]
    text = "\n".join(lines)
    checks = None
    for index, line in enumerate(lines):  # the JSON list starts a line; stderr lines may come before or after it
        if not line.startswith("["):
            continue
        try:
            checks, _ = json.JSONDecoder().raw_decode("\n".join(lines[index:]))
            break
        except ValueError:
            checks = None
    if not isinstance(checks, list):
        return Verdict(False, f"nextmavens doctor did not run (exit {code}): {text.strip()[-600:]}")
    bad = [c for c in checks if c.get("status") == "failed"]
    skipped = [c for c in checks if c.get("status") == "skipped"]
    if code == 0 and not bad:
        reasons = sorted({f"{c['name']}: {c['detail']}" for c in skipped})
        tail = f"; skipped {len(skipped)} ({'; '.join(reasons)})" if skipped else ""
        return Verdict(True, f"nextmavens doctor: {len(checks) - len(skipped)} checks ok{tail}")
    failures = [f"{c['name']} {c['target']}: {c['detail']} -> {c['hint']}" for c in bad]
    return Verdict(False, f"nextmavens doctor failed (exit {code}):\n  " + "\n  ".join(failures or [text[-600:]]))
