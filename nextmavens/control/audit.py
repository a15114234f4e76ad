"""The audit record around one change: a row in the audit log that says how the change ended."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from nextmavens.control.store import runs
from nextmavens.gitrepo import Revision


@contextmanager
def audited(
    control: psycopg.Connection,
    command: str,
    actor: str,
    changes: list[dict[str, str]],
    revision: Revision | None = None,
) -> Iterator[int]:
    """One audit-log row per change made: who, what, when, from which manifest commit, and whether it ended ok or
    failed (and why)."""
    run_id = runs.start_run(control, command, actor, changes, revision)
    try:
        yield run_id
    except Exception as exc:
        runs.finish_run(control, run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    runs.finish_run(control, run_id, "ok", None)
