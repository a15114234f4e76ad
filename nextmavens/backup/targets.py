"""Which databases a backup run covers: every project in the manifests, plus the control database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from nextmavens.backup.pipeline import Target
from nextmavens.backup.settings import CONTROL_KEY, MANIFESTS_KEY, MASTER_KEY_KEY
from nextmavens.control.store import projects
from nextmavens.manifest.loader import load_manifests
from nextmavens.naming import CONTROL_DATABASE, project_names

# The control database is kept as long as the longest project retention, and at least this long.
CONTROL_RETENTION_DAYS = 14


def all_targets(projects_dir: Path | None, control: psycopg.Connection | None = None) -> list[Target]:
    """Every project in the manifests; every project the control database still knows (a removed manifest
    never drops data, so its database keeps being backed up, daily); the control database, last."""
    targets: list[Target] = []
    if projects_dir is not None:
        if not projects_dir.is_dir():
            raise FileNotFoundError(f"projects folder {projects_dir} not found (set NEXTMAVENS_PROJECTS)")
        manifests = load_manifests(projects_dir)
        for project in manifests.projects:
            backup = project.manifest.backup
            targets.append(
                Target(
                    key=project.key,
                    database=project_names(project.ref).database,
                    schedule=backup.schedule,
                    retention_days=backup.retention_days,
                )
            )
    if control is not None:
        known = {t.key.split("/", 1)[1] for t in targets}
        for org, ref in projects.live_projects(control):
            if ref not in known:
                targets.append(Target(key=f"{org}/{ref}", database=project_names(ref).database))
    longest = max([t.retention_days for t in targets] + [CONTROL_RETENTION_DAYS])
    # Last: its dump then holds the records of the project backups made in the same run.
    targets.append(Target(key=CONTROL_KEY, database=CONTROL_DATABASE, schedule="daily", retention_days=longest))
    return targets


def with_master_key(targets: list[Target]) -> list[Target]:
    """Targets for retention: the master key's and the manifest repository's backups are kept as long as the
    control database's."""
    control = next((t for t in targets if t.key == CONTROL_KEY), None)
    if control is None:
        return targets
    days = control.retention_days
    return [
        *targets,
        Target(key=MANIFESTS_KEY, database="-", retention_days=days),
        Target(key=MASTER_KEY_KEY, database="-", retention_days=days),
    ]


def select(targets: list[Target], keys: tuple[str, ...] | list[str]) -> list[Target]:
    """The named targets (ORG/PROJECT), in the order given; all of them when none are named."""
    if not keys:
        return targets
    by_key = {t.key: t for t in targets}
    unknown = [key for key in keys if key not in by_key]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [by_key[key] for key in keys]


def due(target: Target, last_good: datetime | None, now: datetime, backup_hour: int) -> bool:
    """Whether a timer-driven run should back `target` up now (the timer fires hourly).

    hourly: when the last good backup is 50 minutes old. daily and weekly: at `backup_hour` once the last
    good backup is nearly a period old, or at once when it is overdue (a missed night is caught up on the
    next run instead of waiting a day)."""
    if last_good is None:
        return True
    age = now - last_good
    if target.schedule == "hourly":
        return age >= timedelta(minutes=50)
    period = timedelta(days=7) if target.schedule == "weekly" else timedelta(days=1)
    if age >= period + timedelta(hours=1):
        return True
    return now.hour == backup_hour and age >= period - timedelta(hours=2)
