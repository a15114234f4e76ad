"""Studio for a project on the host, from host data (README "Studio for a project"). Pure.

Each project's Studio container (started on demand by the platform service through `nextmavens-privileged studio`)
joins a small docker network of its own, `project_studio_network` on the fixed `project_studio_subnet`: the host is
its gateway (.1), and Studio's postgres-meta URL is the meta gate, an nginx server on `studio_meta_gate_port` (every
address, as Evolution's webhook server: nginx must start before Docker makes the bridge) that allows that subnet
only, and ufw opens the port to it only. nginx reaches each Studio on the loopback port Docker publishes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StudioRoute:
    domain: str  # the Studio name (project_studio_domain)
    network: str
    subnet: str
    gateway: str  # the host on that network: where the Studios reach the meta gate
    gate_port: int
    max_running: int
    idle_minutes: int

    @property
    def gate_url(self) -> str:
        return f"http://{self.gateway}:{self.gate_port}"

    @property
    def firewall_rule(self) -> str:
        """The ufw rule, as `ufw show added` prints it after its `ufw allow`."""
        return f"from {self.subnet} to any port {self.gate_port} proto tcp"


def studio_subnet(subnet: str, max_running: int = 1) -> tuple[str, str]:
    """(subnet, gateway) from group data; ValueError when it cannot hold the host and `max_running` Studios."""
    net = ipaddress.IPv4Network(subnet, strict=True)
    if net.num_addresses - 3 < max_running:  # network, gateway, broadcast
        raise ValueError(f"{subnet!r} cannot hold the host and {max_running} Studios: use a wider subnet")
    return str(net), str(net.network_address + 1)


def studio_route(config: Any) -> StudioRoute | None:
    """The route of a validated HostData; None when Studio for projects is off (no project_studio_domain)."""
    if config.project_studio_domain is None:
        return None
    subnet, gateway = studio_subnet(config.project_studio_subnet, config.project_studio_max_running)
    return StudioRoute(
        config.project_studio_domain,
        config.project_studio_network,
        subnet,
        gateway,
        config.studio_meta_gate_port,
        config.project_studio_max_running,
        config.project_studio_idle_minutes,
    )


def studios_memory_mb(config: Any) -> int:
    """What the per-project Studios may use at once: the cap times Studio's memory limit (0 when off)."""
    if config.project_studio_domain is None:
        return 0
    return int(config.project_studio_max_running) * int(config.memory_limits_mb.get("studio", 0))
