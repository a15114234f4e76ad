"""nginx: hardened base config, ACME webroot, a default server that refuses unknown hosts (444).
Project vhosts are the edge's: `nextmavens apply --edge-config` writes them to conf.d/nextmavens-edge.conf."""

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from nextmavens.host.context import host_config
from nextmavens.host.render import template_context
from nextmavens.templates import render


@deploy("nginx")
def nginx():
    config = host_config()
    context = template_context(config)
    apt.packages(name="Install nginx", packages=["nginx"])
    files.directory(name="ACME webroot", path=config.nginx_acme_webroot, mode="755")
    base = files.put(
        name="nginx.conf (hardened base)",
        src=StringIO(render("templates/nginx/nginx.conf.j2", **context)),
        dest="/etc/nginx/nginx.conf",
        mode="644",
    )
    default = files.put(
        name="Default server: ACME challenges, 444 for unknown hosts",
        src=StringIO(render("templates/nginx/default-server.conf.j2", **context)),
        dest="/etc/nginx/conf.d/00-nextmavens-default.conf",
        mode="644",
    )
    distro_default = files.link(  # a symlink to sites-available/default
        name="Remove the distribution's default site", path="/etc/nginx/sites-enabled/default", present=False
    )
    changed = any_changed(base, default, distro_default)
    server.shell(name="nginx -t before reloading", commands=["nginx -t -q"], _if=changed)
    systemd.service(name="Reload nginx", service="nginx.service", reloaded=True, _if=changed)
    systemd.service(name="nginx running and enabled", service="nginx.service", running=True, enabled=True)
