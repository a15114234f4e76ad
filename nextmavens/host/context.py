"""The current host's validated data, for tasks (pyinfra deploy code)."""

from __future__ import annotations

from pyinfra import host

from nextmavens.host.hostdata import HostData, validate_host_data

_VALIDATED: dict[str, HostData] = {}


def host_config() -> HostData:
    """host.data validated once per host (group files, --data overrides and host data merged)."""
    if host.name not in _VALIDATED:
        _VALIDATED[host.name] = validate_host_data(host.data.dict(), f"host data of {host.name}")
    return _VALIDATED[host.name]
