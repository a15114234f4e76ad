"""The network path of Evolution's webhooks to the platform service, from host data. Pure.

The platform service listens on loopback only. Evolution reaches it through a host nginx server on
`evolution_hooks_port` that proxies `/hooks/evolution/` alone and allows one source address: the Evolution
container's fixed address on a small docker network of its own (`evolution_hooks_network`, fixed
`evolution_hooks_subnet`). The shared network keeps Docker's automatic subnet: changing a live network's
subnet means removing it under every running container, while a new network can be created with a fixed one.
Inside the Evolution container, host.docker.internal names this network's gateway (the host's address on its
bridge), so a webhook leaves through that network with the fixed source address; ufw opens the port to that
subnet only, and nginx refuses any other address (403).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HooksRoute:
    network: str  # the docker network only the Evolution container joins
    subnet: str  # its fixed IPv4 subnet (CIDR)
    gateway: str  # the host's address on that network: host.docker.internal inside the Evolution container
    evolution_address: str  # the Evolution container's fixed address: the one source nginx allows
    port: int  # nginx's port for the webhooks (all addresses; ufw opens it to `subnet` only)

    @property
    def firewall_rule(self) -> str:
        """The ufw rule, as `ufw show added` prints it after its `ufw allow`."""
        return f"from {self.subnet} to any port {self.port} proto tcp"


def hooks_route(network: str, subnet: str, port: int) -> HooksRoute:
    """The route from group data; ValueError when the subnet cannot hold a gateway and one container."""
    net = ipaddress.IPv4Network(subnet, strict=True)
    if net.num_addresses < 4:
        raise ValueError(f"{subnet!r} holds fewer than two host addresses (a gateway and Evolution): use /30 or wider")
    return HooksRoute(network, str(net), str(net.network_address + 1), str(net.network_address + 2), port)


def host_hooks_route(config: Any) -> HooksRoute:
    """The route of a validated HostData."""
    return hooks_route(config.evolution_hooks_network, config.evolution_hooks_subnet, config.evolution_hooks_port)
