"""Last lines of the deploy output: what runs on the host and where (no change, no secret)."""

from pyinfra.api import deploy

from nextmavens.host.context import host_config
from nextmavens.host.operations import notice


@deploy("Summary")
def summary():
    config = host_config()
    ports = ", ".join(f"{name} 127.0.0.1:{port}" for name, port in config.loopback_ports.model_dump().items())
    images = "SUBSTITUTE images (sandbox)" if config.images_are_substitutes else "pinned upstream images"
    notice(name=f"Services on loopback only: {ports}", message=f"stacks run {images}")
    notice(
        name=f"Public: nginx on 80/443 (unknown hosts get 444); SSH on {config.ssh_port}",
        message=f"firewall allows {config.ssh_port}/tcp, " + ", ".join(config.firewall_allowed_ports),
    )
    notice(
        name=f"Secrets: {config.secrets_file} (root, 0600); engine: {config.platform_dir}/bin/nextmavens-env "
        "nextmavens ...",
        message="run nextmavens on the host through the wrapper so it gets NEXTMAVENS_DSN and the master key",
    )
