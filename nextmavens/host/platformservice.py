"""The platform service on the host: the names and paths its templates share (templates/systemd/platform*.j2, the
root command it may run, templates/nextmavens/nextmavens-privileged.j2, and its sudoers rule) and how they follow
from validated host data. Pure; tasks/platform.py renders and installs them."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from nextmavens.doctor.hostfile import PLATFORM_UNIT
from nextmavens.host.hostdata import HostData

UNIT = PLATFORM_UNIT  # the doctor's settings name it too
APPLY_UNIT = "nextmavens-platform-apply.service"
# The apply unit's JSON answer: root's (0600), read back by nextmavens-privileged; /run, so never stale across boots.
APPLY_RESULT = "/run/nextmavens-platform-apply.json"
SUDOERS_FILE = "/etc/sudoers.d/nextmavens-platform"  # no dot in the name: sudo skips files with one
# The secrets file's key the control database's password is copied from, into the service's pgpass credential.
PGPASS_SECRET = "POSTGRES_PASSWORD"


def privileged_command(config: HostData) -> str:
    return f"{config.platform_dir}/bin/nextmavens-privileged"


def privileged_prefix(config: HostData) -> list[str]:
    """NEXTMAVENS_PLATFORM_PRIVILEGED: the argv the service puts before `apply --yes --json` or `container-logs`."""
    return ["sudo", "-n", privileged_command(config)]


def pgpass_file(config: HostData) -> str:
    """Root's 0600 pgpass line for the control database, handed to the service as a systemd credential."""
    return str(PurePosixPath(config.secrets_file).parent / "platform" / "pgpass")


def pgpass_prefix(config: HostData) -> str:
    """host:port:database:user: before the password (libpq's passfile format; the generated password is hex). Any
    database: a key rotation also connects to the cluster's maintenance database."""
    return f"127.0.0.1:{config.loopback_ports.postgres}:*:{config.postgres_admin_user}:"


def platform_paths(config: HostData) -> dict[str, Any]:
    """The platform templates' variables beyond the host data (nextmavens.host.render.template_context adds them)."""
    return {
        "platform_pgpass": pgpass_file(config),
        "platform_apply_result": APPLY_RESULT,
        "platform_privileged_command": privileged_command(config),
        "platform_privileged_prefix": shlex.join(privileged_prefix(config)),
    }
