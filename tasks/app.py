"""The nextmavens package in its own venv on the host, with exactly the dependencies requirements/host.lock pins
(from the host's package index, or from wheels the deploying machine fetched and uploaded: group data
`nextmavens_deps_from`), its secrets-loading wrapper, and one systemd service+timer pair
per entry of group data `timers`."""

import hashlib
from io import BytesIO, StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from nextmavens.host.context import host_config
from nextmavens.host.dist import committed_file, file_sha256, resolve_wheel, wheel_requirements
from nextmavens.host.facts import PythonTarget as PythonTargetFact
from nextmavens.host.lockfile import LOCK_PATH, host_environment, host_environments, parse_lock, require_agreement
from nextmavens.host.operations import prune_units, venv_locked
from nextmavens.host.render import template_context
from nextmavens.host.wheelhouse import PythonTarget, WheelhouseError, locked_wheels
from nextmavens.templates import render

# The first line of templates/systemd/job.*.j2: only units carrying it are ever pruned.
JOB_UNIT_MARKER = "# Managed by NextMavens (tasks/app.py) from group data `timers`; edits are overwritten."


@deploy("nextmavens on the host")
def app():
    config = host_config()
    context = template_context(config)
    apt.packages(name="Python venv support", packages=["python3-venv"])
    wheel = resolve_wheel(config.nextmavens_wheel)
    lock = committed_file(LOCK_PATH)
    pins = parse_lock(lock.decode("utf-8"))
    python = host.get_fact(PythonTargetFact)  # {} before python3 is installed: then every host Python is checked
    envs = [host_environment(python["version"], python["machine"])] if python else host_environments()
    require_agreement(wheel_requirements(wheel), pins, envs, wheel.name)
    remote_wheel = f"{config.platform_dir}/dist/{wheel.name}"
    remote_lock = f"{config.platform_dir}/dist/host.lock"
    files.put(name=f"Upload {wheel.name}", src=str(wheel), dest=remote_wheel, mode="644", create_remote_dir=True)
    files.put(name=f"Upload {LOCK_PATH}", src=BytesIO(lock), dest=remote_lock, mode="644", create_remote_dir=True)
    find_links = None
    if config.nextmavens_deps_from == "wheelhouse":
        if not python:
            raise WheelhouseError(f"{host.name}: no python3 on the host, so no wheels can be chosen for it")
        target = PythonTarget(**python)
        find_links = f"{config.platform_dir}/wheelhouse"
        files.sync(
            name=f"Upload the locked wheels for Python {target.version} on {target.machine}",
            src=str(locked_wheels(pins, target)),
            dest=find_links,
            delete=True,
        )
    venv_locked(
        name="Install nextmavens and its locked dependencies in its venv",
        venv=f"{config.platform_dir}/venv",
        builds_dir=f"{config.platform_dir}/venvs",
        wheel=remote_wheel,
        wheel_sha256=file_sha256(wheel),
        lock=remote_lock,
        lock_sha256=hashlib.sha256(lock).hexdigest(),
        find_links=find_links,
    )
    wrapper = files.put(
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
    collector = files.put(
        name="systemd: nextmavens-metrics.service (the resident metrics collector)",
        src=StringIO(render("templates/systemd/metrics.service.j2", **context)),
        dest="/etc/systemd/system/nextmavens-metrics.service",
        mode="644",
    )
    systemd.daemon_reload(name="systemd daemon-reload for the metrics collector", _if=collector.did_change)
    systemd.service(
        name=f"nextmavens-metrics.service {'running' if config.metrics_collector else 'stopped'}",
        service="nextmavens-metrics.service",
        running=config.metrics_collector,
        enabled=config.metrics_collector,
        restarted=config.metrics_collector,
        _if=any_changed(collector, wrapper),  # the wrapper builds its NEXTMAVENS_METRICS_DSN
    )
    systemd.service(
        name="nextmavens-metrics.service kept in its state",
        service="nextmavens-metrics.service",
        running=config.metrics_collector,
        enabled=config.metrics_collector,
    )
    for timer in host.loop(config.timers):
        systemd.service(
            name=f"nextmavens-{timer.name}.timer {'enabled' if timer.enabled else 'disabled'}",
            service=f"nextmavens-{timer.name}.timer",
            running=timer.enabled,
            enabled=timer.enabled,
        )
