"""The nextmavens package in its own venv on the host, its secrets-loading wrapper, and one systemd
service+timer pair per entry of group data `timers`."""

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from nextmavens.host.context import host_config
from nextmavens.host.dist import file_sha256, resolve_wheel
from nextmavens.host.operations import prune_units, venv_wheel
from nextmavens.host.render import template_context
from nextmavens.templates import render

# The first line of templates/systemd/job.*.j2: only units carrying it are ever pruned.
JOB_UNIT_MARKER = "# Managed by NextMavens (tasks/app.py) from group data `timers`; edits are overwritten."


@deploy("nextmavens on the host")
def app():
    config = host_config()
    context = template_context(config)
    from_apt = config.nextmavens_deps_from == "apt"
    apt.packages(
        name="Python venv support" + (" and the engine's dependencies from apt" if from_apt else ""),
        packages=["python3-venv", *(config.nextmavens_apt_deps if from_apt else [])],
    )
    wheel = resolve_wheel(config.nextmavens_wheel)
    remote_wheel = f"{config.platform_dir}/dist/{wheel.name}"
    files.put(name=f"Upload {wheel.name}", src=str(wheel), dest=remote_wheel, mode="644", create_remote_dir=True)
    venv_wheel(
        name="Install nextmavens in its venv",
        venv=f"{config.platform_dir}/venv",
        wheel=remote_wheel,
        wheel_sha256=file_sha256(wheel),
        system_site_packages=from_apt,
    )
    files.put(
        name="nextmavens-env: runs nextmavens with the host's secrets loaded",
        src=StringIO(render("templates/nextmavens/nextmavens-env.j2", **context)),
        dest=f"{config.platform_dir}/bin/nextmavens-env",
        mode="750",
        create_remote_dir=True,
    )
    units = []
    for timer in host.loop(config.timers):
        unit_context = {**context, "timer": timer.model_dump()}
        for kind in host.loop(("service", "timer")):
            units.append(
                files.put(
                    name=f"systemd: nextmavens-{timer.name}.{kind}",
                    src=StringIO(render(f"templates/systemd/job.{kind}.j2", **unit_context)),
                    dest=f"/etc/systemd/system/nextmavens-{timer.name}.{kind}",
                    mode="644",
                )
            )
    prune_units(
        name="Remove nextmavens-* units no longer declared in `timers`",
        prefix="nextmavens-",
        marker=JOB_UNIT_MARKER,
        keep=[f"nextmavens-{t.name}.{kind}" for t in config.timers for kind in ("service", "timer")],
    )
    if units:
        systemd.daemon_reload(name="systemd daemon-reload for changed units", _if=any_changed(*units))
    for timer in host.loop(config.timers):
        systemd.service(
            name=f"nextmavens-{timer.name}.timer {'enabled' if timer.enabled else 'disabled'}",
            service=f"nextmavens-{timer.name}.timer",
            running=timer.enabled,
            enabled=timer.enabled,
        )
