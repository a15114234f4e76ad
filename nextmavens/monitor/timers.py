"""The systemd jobs for backups and monitors, as entries for group data `timers` (group_data/all.py).

The host helper (tasks/app.py) renders one service+timer pair per entry from templates/systemd/job.*.j2
and runs `command` through the nextmavens-env wrapper, which loads the host's secrets file. Settings that
are not secrets travel in the argv through `env`, so the units stay generic. Paste these entries over the
placeholders there (a test checks each validates as a TimerUnit and names a real command).
"""

from __future__ import annotations

from typing import Any

PROJECTS_DIR = "/opt/nextmavens/projects"
STATE_DIR = "/var/lib/nextmavens"

TIMERS: list[dict[str, Any]] = [
    {
        # Hourly, so `backup.schedule: hourly` manifests are honoured; daily and weekly projects (and the
        # control database) run at NEXTMAVENS_BACKUP_HOUR (UTC), or at once when overdue. Then retention.
        "name": "backup",
        "description": "Encrypted backups to Telegram (what each schedule makes due)",
        "command": [
            "env",
            "NEXTMAVENS_BACKUP_ONLY_DUE=1",
            "NEXTMAVENS_BACKUP_HOUR=3",
            f"NEXTMAVENS_PROJECTS={PROJECTS_DIR}",
            "nextmavens",
            "backup",
            "run",
        ],
        "on_calendar": "*-*-* *:05:00",
        "randomized_delay_s": 120,
        "enabled": True,
    },
    {
        "name": "backup-verify",
        "description": "Weekly restore drill of every backup target",
        "command": ["env", f"NEXTMAVENS_PROJECTS={PROJECTS_DIR}", "nextmavens", "backup", "verify"],
        "on_calendar": "Sun *-*-* 04:30:00",
        "randomized_delay_s": 600,
        "enabled": True,
    },
    {
        "name": "storage-monitor",
        "description": "Disk alerts at 80/90/95% and safe prune at 92%",
        "command": [
            "env",
            f"NEXTMAVENS_STATE_DIR={STATE_DIR}",
            "NEXTMAVENS_MONITOR_PATHS=/",
            "nextmavens",
            "monitor",
            "storage",
        ],
        "on_calendar": "*:0/5",
        "randomized_delay_s": 0,
        "enabled": True,
    },
    {
        "name": "health",
        "description": "Container and endpoint health, alerts on change",
        "command": [
            "env",
            f"NEXTMAVENS_STATE_DIR={STATE_DIR}",
            f"NEXTMAVENS_PROJECTS={PROJECTS_DIR}",
            "nextmavens",
            "monitor",
            "health",
        ],
        "on_calendar": "*:0/5",
        "randomized_delay_s": 30,
        "enabled": True,
    },
    {
        "name": "summary",
        "description": "Daily summary: disk, databases, backups, drills, containers",
        "command": [
            "env",
            f"NEXTMAVENS_STATE_DIR={STATE_DIR}",
            f"NEXTMAVENS_PROJECTS={PROJECTS_DIR}",
            "nextmavens",
            "monitor",
            "summary",
        ],
        "on_calendar": "*-*-* 07:00:00",
        "randomized_delay_s": 300,
        "enabled": True,
    },
]
