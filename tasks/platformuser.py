"""The platform service's own system user (group data `platform_user`): no login shell, no home, no group but its
own. Created before the manifest repository, which it owns, and the service, which runs as it."""

from pyinfra.api import deploy
from pyinfra.operations import server

from nextmavens.host.context import host_config
from nextmavens.host.operations import only_own_group


@deploy("Platform service user")
def platform_user():
    user = host_config().platform_user
    server.group(name=f"Group {user}", group=user, system=True)
    server.user(
        name=f"System user {user}: no login shell, no home",
        user=user,
        group=user,
        system=True,
        shell="/usr/sbin/nologin",
        home="/nonexistent",
        ensure_home=False,
        create_home=False,
    )
    only_own_group(name=f"{user} in its own group only (never docker, never sudo)", user=user)
