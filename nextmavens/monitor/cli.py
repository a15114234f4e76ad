"""`nextmavens status [--json]` and `nextmavens monitor storage|health|summary` (run by systemd timers)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg

from nextmavens.backup.alerts import alerts_from_env
from nextmavens.backup.pipeline import Target
from nextmavens.backup.targets import all_targets
from nextmavens.control.db import connect_control
from nextmavens.control.store import backups
from nextmavens.engine.superusers import superusers
from nextmavens.manifest.loader import ManifestErrors
from nextmavens.monitor.health import check_health, docker_from_env, probe_targets
from nextmavens.monitor.state import HEALTH_FILE, load_json, state_dir
from nextmavens.monitor.storage import check_storage
from nextmavens.monitor.summary import Summary, backup_freshness, gather, render, unexpected_superuser
from nextmavens.monitor.whatsapphealth import WHATSAPP_FILE, evolution_from_edge, whatsapp_checks


def _paths() -> list[str]:
    """Watched filesystems: NEXTMAVENS_MONITOR_PATHS (comma-separated), default the root filesystem."""
    return [p.strip() for p in os.environ.get("NEXTMAVENS_MONITOR_PATHS", "/").split(",") if p.strip()]


def _targets(control: psycopg.Connection | None = None) -> list[Target]:
    projects = Path(os.environ.get("NEXTMAVENS_PROJECTS") or "projects")
    try:
        return all_targets(projects if projects.is_dir() else None, control)
    except (ManifestErrors, psycopg.Error) as exc:
        click.echo(f"projects unreadable, backups listed without them: {exc}", err=True)
        return all_targets(None)


def _optional_control(dsn: str | None) -> psycopg.Connection | None:
    """The control database when reachable: monitors still report disk and containers when it is not."""
    if not dsn:
        return None
    try:
        return connect_control(dsn)
    except psycopg.Error:
        return None


def _summary() -> Summary:
    dsn = os.environ.get("NEXTMAVENS_DSN")
    control = _optional_control(dsn)
    try:
        return gather(dsn, control, _targets(control), _paths(), docker_from_env())
    finally:
        if control is not None:
            control.close()


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Disk, databases, last good backups, restore drills, containers, unexpected superusers and the monitors'
    last state."""
    summary = _summary()
    folder = state_dir()
    monitors: dict[str, Any] = {
        "storage": load_json(folder / "storage.json").get("paths", {}),
        "health": load_json(folder / HEALTH_FILE).get("health", {}),
    }
    if as_json:
        click.echo(json.dumps(summary.as_json() | {"monitors": monitors}, indent=2, default=str))
        return
    click.echo(render(summary))
    down = [key for key, value in monitors["health"].items() if not value.get("ok")]
    if down:
        click.echo("Health checks failing: " + ", ".join(down))
    if summary.problems:
        sys.exit(1)


@click.group("monitor")
def monitor() -> None:
    """Checks run by systemd timers; each alerts through Telegram on changes only."""


@monitor.command("storage")
def storage_command() -> None:
    """Measure disks, alert at 80/90/95 percent once per crossing, prune safely at 92 percent or more."""
    alerts = alerts_from_env()
    check = check_storage(_paths(), state_dir() / "storage.json", alerts.send)
    for path, usage in check.usage.items():
        click.echo(f"{path}: {usage.percent:.1f}% used")


@monitor.command("health")
def health_command() -> None:
    """Container state, health and restarts; HTTP probes; WhatsApp instances stuck connecting or closed longer than
    NEXTMAVENS_WHATSAPP_STUCK_MINUTES (default 10); alerts when something changes state."""
    alerts = alerts_from_env()
    dsn = os.environ.get("NEXTMAVENS_DSN")
    control = _optional_control(dsn)
    targets = _targets(control)
    refs = [t.key.split("/", 1)[1] for t in targets if not t.key.startswith("_")]
    extra: dict[str, dict[str, Any]] = {}
    if control is not None:
        # Backup freshness rides the same change-only alerts: a backup older than its schedule allows is
        # reported within minutes, once, and again when a good backup lands.
        rows, _ = backup_freshness(targets, backups.last_good_by_target(control), datetime.now(UTC))
        extra = {
            f"backup:{row['target']}": {
                "ok": not row["stale"],
                "detail": "never backed up" if row["age_hours"] is None else f"last good {row['age_hours']} h ago",
            }
            for row in rows
        }
        # A superuser the platform does not manage: once when it appears, once when it is gone.
        _, unexpected = superusers(control)
        extra |= {f"superuser:{name}": {"ok": False, "detail": unexpected_superuser(name)} for name in unexpected}
        control.close()
    # WhatsApp instances stuck connecting or closed (Evolution through the edge settings, when the host has them)
    previous = load_json(state_dir() / HEALTH_FILE).get("health", {})
    try:
        extra |= whatsapp_checks(
            lambda: evolution_from_edge(os.environ.get("NEXTMAVENS_EDGE_CONFIG")),
            state_dir() / WHATSAPP_FILE,
            previous,
            time.time(),
            os.environ,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    check = check_health(
        docker_from_env(),
        probe_targets(dict(os.environ), refs),
        state_dir() / HEALTH_FILE,
        alerts.send,
        extra=extra,
    )
    click.echo(json.dumps(check.as_json(), indent=2, default=str))


@monitor.command("summary")
def summary_command() -> None:
    """Send the daily summary to the operator."""
    text = render(_summary())
    click.echo(text)
    alerts_from_env().send(text)
