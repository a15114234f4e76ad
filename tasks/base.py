"""Base system: packages, unattended upgrades, timezone, time sync, swap, journald cap, admin user."""

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from nextmavens.host.context import host_config
from nextmavens.host.operations import swap_file
from nextmavens.host.render import template_context
from nextmavens.templates import render

SWAP_PATH = "/swapfile"


@deploy("Base system")
def base():
    config = host_config()
    context = template_context(config)
    extra = ["unattended-upgrades"] if config.unattended_upgrades else []
    extra += ["systemd-timesyncd"] if config.time_sync else []
    apt.packages(
        name="Install base packages",
        packages=config.base_packages + extra,
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    files.put(
        name="Configure unattended security upgrades",
        src=StringIO(render("templates/base/20auto-upgrades.j2", **context)),
        dest="/etc/apt/apt.conf.d/20auto-upgrades",
        mode="644",
    )
    server.timezone(name=f"Set the timezone to {config.timezone}", timezone=config.timezone)
    if config.time_sync:
        systemd.service(
            name="Keep time with systemd-timesyncd",
            service="systemd-timesyncd.service",
            running=True,
            enabled=True,
        )
    swap_file(name="Swap file sized for the host", path=SWAP_PATH, size_mb=config.swap_size_mb)
    files.line(
        name="Swap file in /etc/fstab",
        path="/etc/fstab",
        line=rf"^{SWAP_PATH}\s",
        replace=f"{SWAP_PATH} none swap sw 0 0",
        present=config.swap_size_mb != 0,
    )
    journald = files.put(
        name="Cap journald's disk use",
        src=StringIO(render("templates/base/journald.conf.j2", **context)),
        dest="/etc/systemd/journald.conf.d/10-nextmavens.conf",
        mode="644",
    )
    systemd.service(
        name="Restart journald for its new cap",
        service="systemd-journald.service",
        restarted=True,
        _if=journald.did_change,
    )
    server.user(
        name=f"Admin user {config.admin_user} with its SSH keys",
        user=config.admin_user,
        shell="/bin/bash",
        groups=["sudo"],
        append=True,
        public_keys=config.admin_ssh_public_keys,
        delete_keys=True,
        create_home=True,
    )
    files.put(
        name="Passwordless sudo for the admin user",
        src=StringIO(render("templates/base/sudoers.j2", **context)),
        dest="/etc/sudoers.d/nextmavens",
        mode="440",
    )
