"""ufw: deny incoming by default; SSH, 80, 443 and what group data adds; the Evolution webhooks' port from the
Evolution container's network only (nextmavens/host/evolutionhooks.py)."""

from pyinfra.api import deploy
from pyinfra.operations import apt

from nextmavens.host.context import host_config
from nextmavens.host.evolutionhooks import host_hooks_route
from nextmavens.host.operations import ufw_firewall
from nextmavens.host.projectstudios import studio_route


@deploy("Firewall")
def firewall():
    config = host_config()
    apt.packages(name="Install ufw", packages=["ufw"])
    studios = studio_route(config)  # the meta gate's port, from the Studios' network only
    studio_rules = [] if studios is None else [studios.firewall_rule]
    ufw_firewall(
        name="ufw: declared rules only, SSH allowed before enabling",
        ssh_port=config.ssh_port,
        allowed=[*config.firewall_allowed_ports, host_hooks_route(config).firewall_rule, *studio_rules],
        prune=config.firewall_prune_unknown_rules,
    )
