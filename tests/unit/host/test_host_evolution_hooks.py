"""Evolution's webhook path on the host, from group data: the fixed network, the ufw rule that opens the webhook
port to that network only, the nginx server's settings, and the refusals of host data that would break it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nextmavens.host import facts, operations
from nextmavens.host.commands import ufw_commands
from nextmavens.host.edgeconfig import edge_settings
from nextmavens.host.evolutionhooks import hooks_route, host_hooks_route
from nextmavens.host.hostdata import HostDataError, validate_groups
from tests.support.groupdata import group_configs
from tests.support.repo import REPO
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


@pytest.fixture
def group_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    monkeypatch.setenv("NEXTMAVENS_SANDBOX_KEY", str(key))
    target = tmp_path / "group_data"
    shutil.copytree(REPO / "group_data", target)
    return target


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('evolution_hooks_subnet = "10.1.1.0/31"', "'evolution_hooks_subnet': Value error, '10.1.1.0/31' holds fewer"),
        ('evolution_hooks_subnet = "10.1.1.1/29"', "'evolution_hooks_subnet': Value error, 10.1.1.1/29 has host bits"),
        ("evolution_hooks_port = 8100", "evolution_hooks_port 8100 is taken by loopback_ports.platform"),
        ("evolution_hooks_port = 443", "evolution_hooks_port 443 is taken by https"),
        ('evolution_hooks_network = "nextmavens"', "evolution_hooks_network must differ from docker_network"),
        ('evolution_hooks_url = "http://host.docker.internal:8100"', "must use evolution_hooks_port 8101"),
    ],
)
def test_host_data_that_would_break_the_path_is_refused(group_dir: Path, text: str, message: str) -> None:
    path = group_dir / "sandbox.py"
    path.write_text(path.read_text() + "\n" + text + "\n")
    with pytest.raises(HostDataError) as err:
        validate_groups(group_dir, ["sandbox"])
    assert message in str(err.value)
