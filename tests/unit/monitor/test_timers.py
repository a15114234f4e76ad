"""The systemd jobs in group data: valid TimerUnits, rendered by the generic job templates, each running a
nextmavens command that exists."""

from __future__ import annotations

import runpy
from typing import Any

import click
import pytest

from nextmavens.cli import main
from nextmavens.host.hostdata import TimerUnit
from nextmavens.templates import render
from tests.support.repo import REPO

GROUP_DATA = REPO / "group_data" / "all.py"
TIMERS: list[dict[str, Any]] = runpy.run_path(str(GROUP_DATA))["timers"]


@pytest.mark.parametrize("entry", TIMERS, ids=[t["name"] for t in TIMERS])
def test_timer_entries_are_valid_and_name_real_commands(entry: dict[str, Any]) -> None:
    timer = TimerUnit(**entry)
    argv = timer.command
    start = argv.index("nextmavens")
    assert all("=" in word for word in argv[1:start])  # only env assignments before the program
    command: click.Command = main
    for word in argv[start + 1 :]:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        assert word in command.commands, f"{entry['name']}: no command {word!r}"
        command = command.commands[word]
    # Rendered exactly as the host does (tasks/app.py): the generic job template.
    text = render("templates/systemd/job.service.j2", timer=timer.model_dump(), platform_dir="/opt/nextmavens")
    assert "ExecStart=/opt/nextmavens/bin/nextmavens-env " in text
    assert " ".join(argv[start:]) in text


def test_monitors_every_five_minutes_backups_hourly_drill_weekly() -> None:
    by_name = {t["name"]: t for t in TIMERS}
    assert by_name["storage-monitor"]["on_calendar"] == "*:0/5"
    assert by_name["health"]["on_calendar"] == "*:0/5"
    assert by_name["backup"]["on_calendar"] == "*-*-* *:05:00"
    assert by_name["backup-verify"]["on_calendar"].startswith("Sun ")
