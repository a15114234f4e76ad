"""The timer entries for group data: valid TimerUnits, rendered by the host helper's generic job templates,
each running a command that exists."""

from __future__ import annotations

import click
import pytest

from nextmavens.backup.cli import backup
from nextmavens.monitor.cli import monitor
from nextmavens.monitor.timers import TIMERS

GROUPS: dict[str, click.Group] = {"backup": backup, "monitor": monitor}


@pytest.mark.parametrize("entry", TIMERS, ids=[t["name"] for t in TIMERS])
def test_timer_entries_are_valid_and_name_real_commands(entry: dict) -> None:
    hostdata = pytest.importorskip("nextmavens.host.hostdata")
    timer = hostdata.TimerUnit(**entry)
    argv = timer.command
    start = argv.index("nextmavens")
    assert all("=" in word for word in argv[1:start])  # only env assignments before the program
    group, command = argv[start + 1], argv[start + 2]
    assert command in GROUPS[group].commands
    # Rendered exactly as the host helper does (tasks/app.py): the generic job template.
    render = pytest.importorskip("nextmavens.host.render").render
    text = render("templates/systemd/job.service.j2", timer=timer.model_dump(), platform_dir="/opt/nextmavens")
    assert "ExecStart=/opt/nextmavens/bin/nextmavens-env env " in text
    assert f" nextmavens {group} {command}" in text


def test_monitors_every_five_minutes_backups_hourly_drill_weekly() -> None:
    by_name = {t["name"]: t for t in TIMERS}
    assert by_name["storage-monitor"]["on_calendar"] == "*:0/5"
    assert by_name["health"]["on_calendar"] == "*:0/5"
    assert by_name["backup"]["on_calendar"] == "*-*-* *:05:00"
    assert by_name["backup-verify"]["on_calendar"].startswith("Sun ")
