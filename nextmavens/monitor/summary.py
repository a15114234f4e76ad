"""The daily summary and `nextmavens status`: disk use, each database's size, the last good backup per
project (stale when older than its schedule allows), the last restore drill, container memory, and any
superuser role the platform does not manage (engine.superusers).

Each section is gathered on its own; a source that cannot be reached (PostgreSQL down, no docker engine)
is reported as such instead of failing the whole picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from nextmavens.backup.pipeline import Target
from nextmavens.control.store import backups
from nextmavens.engine.superusers import superusers
from nextmavens.monitor.health import read_containers
from nextmavens.monitor.storage import measure

# A schedule's last good backup may be this old before it is stale (the period plus slack for the run).
STALE_AFTER = {
    "hourly": timedelta(hours=2),
    "daily": timedelta(hours=26),
    "weekly": timedelta(days=8),
}


@dataclass
class Summary:
    generated_at: datetime
    disk: list[dict[str, Any]] = field(default_factory=list)
    databases: list[dict[str, Any]] = field(default_factory=list)
    backups: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    containers: list[dict[str, Any]] | None = None
    superusers: dict[str, list[str]] | None = None  # {"expected": [...], "unexpected": [...]}
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "disk": self.disk,
            "databases": self.databases,
            "backups": self.backups,
            "verifications": self.verifications,
            "containers": self.containers,
            "superusers": self.superusers,
            "problems": self.problems,
        }


def unexpected_superuser(name: str) -> str:
    return f"role {name} is a superuser the platform does not manage (a tenant that escalated, or a manual change?)"


def backup_freshness(
    targets: Sequence[Target], last_good: dict[str, datetime], now: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    rows, problems = [], []
    for target in targets:
        last = last_good.get(target.key)
        limit = STALE_AFTER.get(target.schedule, STALE_AFTER["daily"])
        stale = last is None or now - last > limit
        age_hours = None if last is None else round((now - last).total_seconds() / 3600, 1)
        rows.append(
            {
                "target": target.key,
                "schedule": target.schedule,
                "last_good": last.isoformat() if last else None,
                "age_hours": age_hours,
                "stale": stale,
            }
        )
        if stale:
            when = "never" if last is None else f"{age_hours} h ago"
            problems.append(f"backup of {target.key} is stale: last good {when}, schedule {target.schedule}")
    return rows, problems


def gather(
    dsn: str | None,
    control: psycopg.Connection | None,
    targets: Sequence[Target],
    paths: Sequence[str],
    docker_client: Any | None,
    now: datetime | None = None,
) -> Summary:
    now = now or datetime.now(UTC)
    summary = Summary(generated_at=now)
    for path in paths:
        try:
            usage = measure(path)
        except OSError as exc:
            summary.problems.append(f"disk {path}: {exc}")
            continue
        summary.disk.append(
            {"path": path, "percent": round(usage.percent, 1), "used": usage.used, "total": usage.total}
        )
    if dsn:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                rows = conn.execute(
                    "SELECT datname, pg_database_size(datname) FROM pg_database"
                    " WHERE NOT datistemplate AND datallowconn ORDER BY 2 DESC"
                ).fetchall()
                good, bad = superusers(conn)
            summary.databases = [{"name": name, "bytes": int(size)} for name, size in rows]
            summary.superusers = {"expected": good, "unexpected": bad}
            summary.problems += [unexpected_superuser(name) for name in bad]
        except psycopg.Error as exc:
            summary.problems.append(f"PostgreSQL unreachable: {exc.__class__.__name__}")
    if control is not None:
        try:
            summary.backups, stale = backup_freshness(targets, backups.last_good_by_target(control), now)
            summary.problems += stale
            summary.verifications = [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
                for row in backups.last_verifications(control)
            ]
            summary.problems += [
                f"last restore drill of {v['target']} FAILED: {v['error']}"
                for v in summary.verifications
                if v.get("ok") is False
            ]
        except psycopg.Error as exc:
            summary.problems.append(f"control database: {exc.__class__.__name__}")
    if docker_client is None:
        summary.containers = None
    else:
        try:
            containers = read_containers(docker_client, with_memory=True)
            summary.containers = [
                {
                    "name": c.name,
                    "status": c.status,
                    "health": c.health,
                    "restarts": c.restarts,
                    "memory_bytes": c.memory_bytes,
                    "ok": c.ok,
                }
                for c in containers
            ]
            summary.problems += [f"container {c.name} is {c.status}" for c in containers if not c.ok]
        except Exception as exc:  # noqa: BLE001
            summary.problems.append(f"docker: {exc.__class__.__name__}")
    return summary


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f} MB"


def render(summary: Summary) -> str:
    lines = [f"NextMavens summary {summary.generated_at:%Y-%m-%d %H:%M} UTC"]
    if summary.problems:
        lines.append(f"PROBLEMS ({len(summary.problems)}):")
        lines += [f"  ! {p}" for p in summary.problems]
    else:
        lines.append("no problems")
    lines.append("Disk:")
    lines += [f"  {d['path']}: {d['percent']}% of {d['total'] / 1e9:.1f} GB" for d in summary.disk]
    if summary.databases:
        lines.append("Databases:")
        lines += [f"  {d['name']}: {_mb(d['bytes'])}" for d in summary.databases]
    if summary.backups:
        lines.append("Last good backup:")
        for b in summary.backups:
            age = "never" if b["age_hours"] is None else f"{b['age_hours']} h ago"
            lines.append(f"  {b['target']}: {age} ({b['schedule']}){' STALE' if b['stale'] else ''}")
    if summary.verifications:
        lines.append("Last restore drill:")
        for v in summary.verifications:
            lines.append(f"  {v['target']}: {'ok' if v.get('ok') else 'FAILED'} at {v.get('finished_at')}")
    if summary.superusers is not None:
        lines.append("Superusers: " + ", ".join(summary.superusers["expected"] + summary.superusers["unexpected"]))
        lines += [f"  ! unexpected: {name}" for name in summary.superusers["unexpected"]]
    lines.append("Containers:" if summary.containers is not None else "Containers: docker engine unreachable")
    for c in summary.containers or []:
        health = f"/{c['health']}" if c["health"] else ""
        lines.append(f"  {c['name']}: {c['status']}{health}, {_mb(c['memory_bytes'])}, restarts {c['restarts']}")
    return "\n".join(lines)
