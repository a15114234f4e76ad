"""Docker Engine and compose v2: Docker's apt repository (signed-by keyring) or the distribution's
packages, as group data says; daemon.json with log rotation and live-restore; the platform network, and the
Evolution webhooks' network on its fixed subnet (nextmavens/host/evolutionhooks.py)."""

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from nextmavens.host.context import host_config
from nextmavens.host.evolutionhooks import host_hooks_route
from nextmavens.host.facts import OsRelease
from nextmavens.host.operations import docker_network
from nextmavens.host.projectstudios import studio_route
from nextmavens.host.render import template_context
from nextmavens.templates import render

KEYRING = "/etc/apt/keyrings/docker.gpg"


@deploy("Docker")
def docker():
    config = host_config()
    if config.docker_source == "docker-ce":
        # The OS id and codename name the repository; they are the host's identity, not its state.
        os_release = host.get_fact(OsRelease)
        repo_url = f"{config.docker_apt_url}/{os_release.get('ID', 'ubuntu')}"
        key = apt.key(name="Docker's apt signing key", src=f"{repo_url}/gpg", dest=KEYRING)
        source = apt.sources_file(
            name="Docker's apt repository (signed-by)",
            filename="docker",
            uris=[repo_url],
            suites=[os_release.get("VERSION_CODENAME", "")],
            components=["stable"],
            signed_by=KEYRING,
        )
        apt.update(name="Refresh apt for Docker's repository", _if=any_changed(key, source))
        packages = config.docker_ce_packages
    else:
        packages = config.docker_distro_packages
    apt.packages(name="Install Docker Engine and compose v2", packages=packages)
    daemon = files.put(
        name="daemon.json: log rotation, live-restore",
        src=StringIO(render("templates/docker/daemon.json.j2", **template_context(config))),
        dest="/etc/docker/daemon.json",
        mode="644",
    )
    # live-restore keeps containers running while dockerd restarts.
    systemd.service(
        name="Restart Docker for daemon.json", service="docker.service", restarted=True, _if=daemon.did_change
    )
    systemd.service(name="Docker running and enabled", service="docker.service", running=True, enabled=True)
    docker_network(name=f"Docker network {config.docker_network}", network=config.docker_network)
    hooks = host_hooks_route(config)
    docker_network(
        name=f"Docker network {hooks.network} ({hooks.subnet}: Evolution's webhooks to the host)",
        network=hooks.network,
        subnet=hooks.subnet,
        gateway=hooks.gateway,
    )
    studios = studio_route(config)
    if studios is not None:
        docker_network(
            name=f"Docker network {studios.network} ({studios.subnet}: the per-project Studios, the meta gate)",
            network=studios.network,
            subnet=studios.subnet,
            gateway=studios.gateway,
        )
