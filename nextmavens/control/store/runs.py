"""The audit log of changes (table `apply_runs`): one row per run, who, what, when and how it ended."""

from __future__ import annotations

import json

import psycopg


def start_run(control: psycopg.Connection, command: str, actor: str, changes: list[dict[str, str]]) -> int:
    row = control.execute(
        "INSERT INTO apply_runs (command, actor, changes) VALUES (%s, %s, %s) RETURNING id",
        (command, actor, json.dumps(changes)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_run(control: psycopg.Connection, run_id: int, result: str, error: str | None) -> None:
    control.execute(
        "UPDATE apply_runs SET finished_at = now(), result = %s, error = %s WHERE id = %s", (result, error, run_id)
    )


def mark_interrupted(control: psycopg.Connection) -> None:
    """Runs still marked running; call only while holding the apply lock, which proves their process ended."""
    control.execute(
        "UPDATE apply_runs SET result = 'interrupted', finished_at = now(),"
        " error = 'the process ended before the run finished (found by a later run)'"
        " WHERE result = 'running'"
    )
