"""SSH hardening: keys only, no password logins, root as group data says; validated by `sshd -t`
before a reload that keeps the connection running this deploy. Runs after the admin user has its
keys (base) and the firewall allows the SSH port."""

from pyinfra.api import deploy

from nextmavens.host.context import host_config
from nextmavens.host.operations import sshd_dropin
from nextmavens.host.render import template_context
from nextmavens.templates import render


@deploy("SSH hardening")
def ssh():
    config = host_config()
    sshd_dropin(
        name="Harden sshd (validated with sshd -t, then reloaded)",
        path="/etc/ssh/sshd_config.d/00-nextmavens.conf",
        content=render("templates/ssh/00-nextmavens.conf.j2", **template_context(config)),
    )
