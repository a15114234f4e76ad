"""What `nextmavens container-logs` and the platform's logs endpoint accept, and the one docker argv they run. Pure.

The command runs as root (through sudo) with arguments the platform service passes on from a request, so
nothing of them reaches docker unchecked: the project must be declared and applied, the service one it really
has, `--since` a duration or a time rewritten here, and the container name derived from the ref (naming.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from nextmavens.apps.releases import release_names
from nextmavens.manifest.models import APP_NAME_PATTERN, REF_PATTERN, ProjectManifest
from nextmavens.naming import service_container

SERVICES = ("rest", "auth", "storage")
APP_PREFIX = "app:"  # `app:<name>`: the active release of one of the project's apps
_APP = re.compile(APP_NAME_PATTERN)
_REF = re.compile(REF_PATTERN)
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SINCE_S = 366 * 86400


class LogsRefused(ValueError):
    """The request names nothing the command may read; the message says what (never a path)."""


@dataclass(frozen=True)
class LogTarget:
    org: str
    ref: str
    service: str
    release: int | None = None  # an app's: the active release, which the host's state names

    @property
    def app(self) -> str | None:
        return self.service.removeprefix(APP_PREFIX) if self.service.startswith(APP_PREFIX) else None

    @property
    def container(self) -> str:
        if self.app is not None:
            if self.release is None:
                raise LogsRefused(f"app {self.app!r} of {self.org}/{self.ref} has no active release")
            return release_names(self.ref, self.app, self.release).container
        return service_container(self.ref, self.service)


def split_project(key: str) -> tuple[str, str]:
    """ORG/REF as the manifests allow them, or LogsRefused."""
    org, _, ref = key.partition("/")
    if not _REF.match(org) or not _REF.match(ref) or len(org) > 63 or len(ref) > 63:
        raise LogsRefused(f"name the project as ORG/REF (lowercase slugs), got {key[:100]!r}")
    return org, ref


def project_services(manifest: ProjectManifest) -> tuple[str, ...]:
    """The services the project's compose file runs (edge/services.py): storage only when enabled."""
    return ("rest", "auth", "storage") if manifest.storage.enabled else ("rest", "auth")


def log_target(org: str, ref: str, service: str, manifest: ProjectManifest | None, applied: bool) -> LogTarget:
    """The container to read, for a project declared (`manifest`, not absent) and applied under `org`."""
    if manifest is None or manifest.state == "absent" or not applied:
        raise LogsRefused(f"no applied project {org}/{ref}")
    if service.startswith(APP_PREFIX):
        name = service.removeprefix(APP_PREFIX)
        if not _APP.match(name) or len(name) > 30 or name not in {a.name for a in manifest.apps}:
            raise LogsRefused(f"{org}/{ref} declares no app {name[:40]!r}")
        return LogTarget(org, ref, service)
    if service not in SERVICES:
        raise LogsRefused(f"service must be one of {', '.join(SERVICES)} or app:<name>, got {service[:40]!r}")
    if service not in project_services(manifest):
        raise LogsRefused(f"{org}/{ref} has no {service} service (storage is not enabled)")
    return LogTarget(org, ref, service)


def parse_since(text: str, now: datetime) -> str:
    """`10m`, `2h`, `30s`, `1d` or an RFC 3339 time, as the RFC 3339 UTC time docker's `--since` takes; not before
    a year ago nor in the future. LogsRefused otherwise."""
    duration = _DURATION.match(text)
    if duration is not None:
        seconds = int(duration.group(1)) * SECONDS[duration.group(2)]
        if seconds > MAX_SINCE_S:
            raise LogsRefused(f"since {text!r} reaches back more than a year")
        return _rfc3339(now.timestamp() - seconds)
    if len(text) > 40 or not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]+([Zz]|[+-][0-9]{2}:[0-9]{2})$", text):
        raise LogsRefused(f"since takes a duration (10m, 2h, 1d) or an RFC 3339 time, got {text[:40]!r}")
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        raise LogsRefused(f"since {text!r} is not a valid RFC 3339 time") from None
    if moment > now or now.timestamp() - moment.timestamp() > MAX_SINCE_S:
        raise LogsRefused(f"since {text!r} is in the future or more than a year ago")
    return _rfc3339(moment.timestamp())


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def docker_logs_argv(target: LogTarget, since: str | None, follow: bool) -> list[str]:
    """The only command this module ever builds: `since` as parse_since returned it."""
    return [
        "docker",
        "logs",
        "--timestamps",
        *([f"--since={since}"] if since else []),
        *(["--follow"] if follow else []),
        target.container,
    ]


def command_argv(org: str, ref: str, service: str, since: str | None, follow: bool) -> list[str]:
    """The `nextmavens container-logs` arguments for a request (after the privileged prefix)."""
    return [
        "container-logs",
        f"{org}/{ref}",
        service,
        *(["--since", since] if since else []),
        *(["--follow"] if follow else []),
    ]
