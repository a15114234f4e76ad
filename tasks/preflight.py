"""Stop before the first change: invalid host data or an unsupported OS release."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError

from nextmavens.host.commands import unsupported_os_reason
from nextmavens.host.context import host_config
from nextmavens.host.facts import OsRelease
from nextmavens.host.hostdata import HostDataError
from nextmavens.host.operations import notice, supported_os


@deploy("Preflight")
def preflight():
    try:
        config = host_config()
    except HostDataError as err:
        raise DeployError(f"host data is invalid; nothing was run:\n{err}") from None
    # The OS release is not state the deploy changes, so checking it here (before any operation is
    # even planned) is safe; supported_os repeats the check at execute time as the first operation.
    reason = unsupported_os_reason(host.get_fact(OsRelease))
    if reason:
        raise DeployError(f"{host.name}: {reason}; nothing was run")
    supported_os(name="Check the OS release is supported")
    if config.images_are_substitutes:
        notice(
            name="NOTICE: this host runs locally built SUBSTITUTE images, not the pinned upstream ones",
            message="images: " + ", ".join(sorted(set(config.images.model_dump().values()))),
        )
