"""The storage monitor: tiered disk alerts (80, 90, 95 percent), once per crossing, and a safe prune.

State machine per watched path: `level` is the highest threshold currently reported (0 = below all). A
reading at or above a higher threshold raises the level and sends one alert (for the highest threshold
crossed); readings that hold the level send nothing. The level falls only when usage drops HYSTERESIS
points below it, with one recovery message, so a disk hovering at 80.0 does not flap.

At PRUNE_AT percent or more, it frees space with commands built here as argv lists (nothing through a
shell): stopped containers older than a day not labelled `nextmavens.keep`, unused images older than a
day, build cache, journal entries older than a week. Never volumes, never `system prune`: project data
lives in volumes and bind mounts, which none of these commands remove. Then it measures again and
reports what was freed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nextmavens.dockerenv import docker_environment
from nextmavens.monitor.state import load_json, save_json
from nextmavens.runner import Runner, run_command

THRESHOLDS = (80, 90, 95)
HYSTERESIS = 2.0
PRUNE_AT = 92.0
# With media offload configured, the prune waits for an offload pass that succeeded and runs only if the disk is
# still at or above this afterwards (the pass may have freed enough).
PRUNE_AFTER_OFFLOAD_FLOOR = 90.0
PRUNE_MIN_INTERVAL = 30 * 60  # seconds between prunes, so a disk stuck above 92% is not pruned every run
KEEP_LABEL = "nextmavens.keep"
JOURNAL_KEEP = "7d"

# Words that must never appear in a prune command: volumes hold project data.
FORBIDDEN_WORDS = ("volume", "volumes", "--volumes", "system", "rm", "rmi", "-v")


@dataclass(frozen=True)
class DiskUsage:
    path: str
    total: int
    used: int
    available: int

    @property
    def percent(self) -> float:
        """As df reports Use%: used over (used + available to unprivileged users)."""
        denominator = self.used + self.available
        return 100.0 * self.used / denominator if denominator else 0.0


def measure(path: str | Path) -> DiskUsage:
    stats = os.statvfs(path)
    total = stats.f_blocks * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return DiskUsage(str(path), total, used, stats.f_bavail * stats.f_frsize)


@dataclass(frozen=True)
class Event:
    kind: str  # "alert" | "recovery" | "prune"
    path: str
    level: int
    percent: float
    text: str


def level_for(percent: float, thresholds: Sequence[int] = THRESHOLDS) -> int:
    return max((t for t in thresholds if percent >= t), default=0)


def evaluate(
    path: str,
    previous_level: int,
    percent: float,
    thresholds: Sequence[int] = THRESHOLDS,
    hysteresis: float = HYSTERESIS,
) -> tuple[int, list[Event]]:
    """(new level, events) for one reading. Pure: the whole alert policy lives here."""
    reached = level_for(percent, thresholds)
    if reached > previous_level:
        text = f"disk {path} is {percent:.1f}% full: crossed {reached}%"
        return reached, [Event("alert", path, reached, percent, text)]
    if previous_level and percent < previous_level - hysteresis:
        # Falls to the highest threshold it is still clearly above (with the same hysteresis).
        new_level = max((t for t in thresholds if t < previous_level and percent >= t - hysteresis), default=0)
        below = "all thresholds" if new_level == 0 else f"{previous_level}%"
        text = f"disk {path} recovered: {percent:.1f}% full, back below {below}"
        return new_level, [Event("recovery", path, new_level, percent, text)]
    return previous_level, []


def prune_commands(docker: str = "docker", journalctl: str = "journalctl") -> list[list[str]]:
    """The prune plan, as argv lists. Every command here is safe for project data by construction.

    Exactly one `label!=` filter on purpose: docker ORs repeated negated label filters on prune (moby
    issue 40286), so a second one would widen what is removed instead of narrowing it. Container prune
    never removes volumes, named or anonymous; data-holding containers carry the keep label anyway."""
    return [
        [
            docker,
            "container",
            "prune",
            "--force",
            "--filter",
            "until=24h",
            "--filter",
            f"label!={KEEP_LABEL}",
        ],
        [docker, "image", "prune", "--all", "--force", "--filter", "until=24h"],
        [docker, "builder", "prune", "--force", "--filter", "until=24h"],
        [journalctl, f"--vacuum-time={JOURNAL_KEEP}"],
    ]


def assert_safe(argv: Sequence[str]) -> None:
    """Refuse any command that could remove a volume or prune the whole system."""
    words = {word.lower() for word in argv[1:]}
    bad = words & set(FORBIDDEN_WORDS)
    if bad or any("volume" in word for word in words):
        raise ValueError(f"refusing an unsafe prune command: {' '.join(argv)}")


def run_prune_command(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A prune command that cannot run reports it as a failed command: the monitor must go on."""
    try:
        return run_command(argv, timeout=600, env=docker_environment())
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not installed")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]}: timed out")


@dataclass
class PruneReport:
    path: str
    before: DiskUsage
    after: DiskUsage
    commands: list[tuple[list[str], int, str]] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return max(0, self.before.used - self.after.used)


def prune(path: str, runner: Runner = run_prune_command, commands: list[list[str]] | None = None) -> PruneReport:
    before = measure(path)
    report = PruneReport(path, before, before)
    for argv in commands if commands is not None else prune_commands():
        assert_safe(argv)
        done = runner(argv)
        report.commands.append((argv, done.returncode, (done.stdout + done.stderr).strip()[-500:]))
    report.after = measure(path)
    return report


@dataclass
class StorageCheck:
    usage: dict[str, DiskUsage]
    events: list[Event]
    prunes: list[PruneReport]


def check_storage(
    paths: Sequence[str],
    state_file: Path,
    send: Callable[[str], Any],
    runner: Runner = run_prune_command,
    now: float | None = None,
    prune_at: float = PRUNE_AT,
    prune_interval: float = PRUNE_MIN_INTERVAL,
    offload: Callable[[], bool] | None = None,
) -> StorageCheck:
    """One monitor run: measure each path, alert on crossings, prune at prune_at, persist the state.

    `offload`: runs a media offload pass and says whether it succeeded; given, a prune waits for it: none when the
    pass failed, none when the disk is below PRUNE_AFTER_OFFLOAD_FLOOR after it."""
    now = time.time() if now is None else now
    state = load_json(state_file)
    paths_state: dict[str, Any] = state.setdefault("paths", {})
    result = StorageCheck({}, [], [])
    for path in paths:
        entry = paths_state.setdefault(path, {"level": 0})
        usage = measure(path)
        readings = [usage]
        last_prune = entry.get("last_prune")
        if usage.percent >= prune_at and (last_prune is None or now - float(last_prune) >= prune_interval):
            # Report the crossing first, then free space, then judge the new reading too.
            _apply(entry, path, usage, send, result)
            if offload is not None:
                entry["last_prune"] = now  # the offload pass is not run again before the interval either
                if not offload():
                    text = f"disk {path} at {usage.percent:.1f}%: the media offload pass failed, so nothing was pruned"
                    result.events.append(Event("prune", path, int(entry["level"]), usage.percent, text))
                    send(text)
                    entry.update(percent=round(usage.percent, 2), checked_at=now)
                    result.usage[path] = usage
                    continue
                usage = measure(path)
                if usage.percent < PRUNE_AFTER_OFFLOAD_FLOOR:
                    _apply(entry, path, usage, send, result)
                    entry.update(percent=round(usage.percent, 2), checked_at=now)
                    result.usage[path] = usage
                    continue
            report = prune(path, runner)
            entry["last_prune"] = now
            result.prunes.append(report)
            failed = [" ".join(argv[:3]) for argv, code, _ in report.commands if code != 0]
            text = (
                f"disk {path} at {report.before.percent:.1f}%: pruned stopped containers, unused images, "
                f"build cache and old journal; freed {report.freed / 1e6:.0f} MB, "
                f"now {report.after.percent:.1f}%" + (f" (failed: {', '.join(failed)})" if failed else "")
            )
            result.events.append(Event("prune", path, int(entry["level"]), report.after.percent, text))
            send(text)
            readings = [report.after]
        for reading in readings:
            _apply(entry, path, reading, send, result)
        entry.update(percent=round(readings[-1].percent, 2), checked_at=now)
        result.usage[path] = readings[-1]
    save_json(state_file, state)
    return result


def _apply(
    entry: dict[str, Any], path: str, usage: DiskUsage, send: Callable[[str], Any], result: StorageCheck
) -> None:
    level, events = evaluate(path, int(entry.get("level", 0)), usage.percent)
    entry["level"] = level
    for event in events:
        send(event.text)
    result.events.extend(events)
