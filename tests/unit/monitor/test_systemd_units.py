"""The timer unit templates render with the documented variables and run the right commands."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import pytest

UNITS = Path(__file__).resolve().parents[3] / "templates" / "systemd"
NAMES = [
    "nextmavens-backup",
    "nextmavens-backup-verify",
    "nextmavens-storage-monitor",
    "nextmavens-health",
    "nextmavens-summary",
]
EXPECTED = {
    "nextmavens-backup": "/opt/nm/bin/nextmavens backup run",
    "nextmavens-backup-verify": "/opt/nm/bin/nextmavens backup verify",
    "nextmavens-storage-monitor": "/opt/nm/bin/nextmavens monitor storage",
    "nextmavens-health": "/opt/nm/bin/nextmavens monitor health",
    "nextmavens-summary": "/opt/nm/bin/nextmavens monitor summary",
}


def render(name: str) -> configparser.ConfigParser:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(UNITS), undefined=jinja2.StrictUndefined)
    text = env.get_template(name).render(nextmavens_bin="/opt/nm/bin/nextmavens", nextmavens_env_file="/etc/nm.env")
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("name", NAMES)
def test_units_render(name: str) -> None:
    service = render(f"{name}.service.j2")
    assert service["Service"]["ExecStart"] == EXPECTED[name]
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["EnvironmentFile"] == "/etc/nm.env"
    assert service["Service"]["UMask"] == "0077"
    timer = render(f"{name}.timer.j2")
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert "OnCalendar" in timer["Timer"] or "OnUnitActiveSec" in timer["Timer"]


def test_storage_monitor_every_five_minutes() -> None:
    assert render("nextmavens-storage-monitor.timer.j2")["Timer"]["OnUnitActiveSec"] == "5min"


def test_backup_timer_only_runs_what_is_due() -> None:
    text = (UNITS / "nextmavens-backup.service.j2").read_text()
    assert "Environment=NEXTMAVENS_BACKUP_ONLY_DUE=1" in text
    assert "Environment=NEXTMAVENS_BACKUP_HOUR={{ nextmavens_backup_hour | default(3) }}" in text
