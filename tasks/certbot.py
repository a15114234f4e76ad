"""certbot with a renewal deploy hook that reloads nginx only after `nginx -t` passes.
Certificates per name are the engine's (HTTP-01 through the ACME webroot)."""

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import apt, files

from nextmavens.host.context import host_config
from nextmavens.host.render import template_context
from nextmavens.templates import render


@deploy("certbot")
def certbot():
    config = host_config()
    apt.packages(name="Install certbot", packages=["certbot"])
    files.put(
        name="certbot deploy hook: nginx -t, then reload",
        src=StringIO(render("templates/certbot/reload-nginx.sh.j2", **template_context(config))),
        dest="/etc/letsencrypt/renewal-hooks/deploy/nextmavens-reload-nginx.sh",
        mode="755",
        create_remote_dir=True,
    )
