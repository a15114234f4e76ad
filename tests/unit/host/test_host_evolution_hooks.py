"""Evolution's webhook path on the host, from group data: the fixed network, the ufw rule that opens the webhook
port to that network only and the nginx server's settings (refused host data: test_host_hostdata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.host import facts, operations
from nextmavens.host.commands import ufw_commands
from nextmavens.host.edgeconfig import edge_settings
from nextmavens.host.evolutionhooks import hooks_route, host_hooks_route
from tests.support.groupdata import group_configs
from tests.unit.host.test_host_operations import CONVERGED_UFW, run_op


def test_the_route_takes_the_first_two_addresses_of_its_subnet() -> None:
    route = hooks_route("nextmavens-hooks", "10.254.213.0/29", 8101)
    assert (route.gateway, route.evolution_address) == ("10.254.213.1", "10.254.213.2")
    assert route.firewall_rule == "from 10.254.213.0/29 to any port 8101 proto tcp"
    with pytest.raises(ValueError, match="fewer than two host addresses"):
        hooks_route("h", "10.254.213.0/31", 8101)
    with pytest.raises(ValueError):
        hooks_route("h", "10.254.213.1/29", 8101)  # host bits set: not a network


@pytest.mark.parametrize("group", ["sandbox", "production"])
def test_group_data_opens_the_port_to_the_hooks_subnet_only(tmp_path: Path, monkeypatch, group: str) -> None:
    config = group_configs(tmp_path, monkeypatch)[group]
    route = host_hooks_route(config)
    allowed = [*config.firewall_allowed_ports, route.firewall_rule]
    todo = ufw_commands(CONVERGED_UFW, config.ssh_port, allowed, True, "deny", "allow")
    assert todo == [f"ufw allow from {route.subnet} to any port {route.port} proto tcp"]
    converged = {**CONVERGED_UFW, "rules": [*CONVERGED_UFW["rules"], f"allow {route.firewall_rule}"]}
    assert ufw_commands(converged, config.ssh_port, allowed, True, "deny", "allow") == []
    # the edge's nginx server allows exactly the Evolution container's address, on the same port
    settings = edge_settings(config)
    assert (settings.evolution_hooks_port, settings.evolution_hooks_source) == (route.port, route.evolution_address)


def test_the_hooks_network_is_created_on_its_fixed_subnet_once() -> None:
    args = {"network": "nextmavens-hooks", "subnet": "10.254.213.0/29", "gateway": "10.254.213.1"}
    commands, _ = run_op(operations.docker_network, {facts.DockerNetworks: ["bridge"]}, **args)
    assert commands == [
        "docker network create --driver bridge --subnet 10.254.213.0/29 --gateway 10.254.213.1 nextmavens-hooks"
    ]
    present = {facts.DockerNetworks: ["nextmavens-hooks"], facts.DockerNetworkSubnets: ["10.254.213.0/29"]}
    assert run_op(operations.docker_network, present, **args)[0] == []


def test_a_moved_subnet_stops_the_deploy_instead_of_recreating_the_network() -> None:
    from pyinfra.api.exceptions import OperationError

    args = {"network": "nextmavens-hooks", "subnet": "10.254.214.0/29", "gateway": "10.254.214.1"}
    present = {facts.DockerNetworks: ["nextmavens-hooks"], facts.DockerNetworkSubnets: ["10.254.213.0/29"]}
    with pytest.raises(OperationError, match="has subnet 10.254.213.0/29, group data says 10.254.214.0/29"):
        run_op(operations.docker_network, present, **args)


def test_docker_network_subnets_sample() -> None:
    assert facts.DockerNetworkSubnets().process(["10.254.213.0/29 fd00::/64 "]) == ["10.254.213.0/29", "fd00::/64"]
    assert facts.DockerNetworkSubnets().process([""]) == []
