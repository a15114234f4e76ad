"""The audit log of changes (table `apply_runs`): one row per run, who, what, when and how it ended."""

from __future__ import annotations

import json

import psycopg

from nextmavens.gitrepo import Revision


def start_run(
    control: psycopg.Connection,
    command: str,
    actor: str,
    changes: list[dict[str, str]],
    revision: Revision | None = None,
) -> int:
    """A running row; `revision`: the manifest repository's commit the run reads (None: no repository)."""
    row = control.execute(
        "INSERT INTO apply_runs (command, actor, changes, manifest_commit, manifest_dirty)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (
            command,
            actor,
            json.dumps(changes),
            revision.commit if revision else None,
            revision.dirty if revision else None,
        ),
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
