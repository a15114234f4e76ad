"""The apps' part of the edge's apply (`nextmavens apply`, its reconcile timer) and of a project's confirmed removal.

reconcile, for each app of an active project that was deployed (it has a state file):
- removes the releases an interrupted deploy left (release.clean_orphans: labelled by us, never served);
- keeps each release nginx serves (the active one, each preview's) running: one that is stopped (a crash, a
  `docker stop`) is started again and must pass the health check; one whose container is gone is an error that
  names the way back (rollback or deploy). After a host reboot Docker starts the active releases itself (restart
  policy `unless-stopped`; retired releases were stopped by us and stay stopped), on new loopback ports;
- rewrites the app's nginx files for the ports the releases have now and the certificates that exist now (so a
  certificate issued by this apply gives the app HTTPS), reloading nginx only when a file changed.
A deploy in progress holds the app's lock: reconcile leaves that app to the next run.

remove_project (after `destroy --confirm`): every app release of the project (containers, images), its nginx
files, state and secrets folders, and its apps network (only the one carrying the project's label).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from nextmavens.apps.dockerops import DockerPort
from nextmavens.apps.release import (
    AppState,
    Context,
    DeployBusy,
    Target,
    app_lock,
    clean_orphans,
    healthy_port,
    nginx_applier,
    remove_release,
    switch,
)
from nextmavens.apps.releases import LABEL_PROJECT, preview_hosts
from nextmavens.apps.upstream import conf_filename
from nextmavens.edge.apply import EdgeReport
from nextmavens.edge.inputs import EdgeProject
from nextmavens.edge.nginx import NginxApplier, remove_managed
from nextmavens.edge.settingsfile import EdgeHost
from nextmavens.manifest.models import App
from nextmavens.naming import app_network


def deployed_targets(state_dir: Path, projects: Iterable[EdgeProject]) -> list[Target]:
    """The apps of active projects that have a state file in `state_dir` (were deployed on this host)."""
    targets = []
    for project in sorted(projects, key=lambda p: p.ref):
        if project.state != "active":
            continue
        for app in project.manifest.apps:
            target = Target(project.org, project.ref, app)
            if (state_dir / target.ref / app.name / "state.json").is_file():
                targets.append(target)
    return targets


def served_names(state_dir: Path, projects: Iterable[EdgeProject]) -> list[str]:
    """Names the deployed apps' nginx files serve (the app's domains once a release is active, each preview's
    hosts): they get certificates like a project's custom domains. Read from the state files alone (no Docker)."""
    names: list[str] = []
    for target in deployed_targets(state_dir, projects):
        state = AppState.load(state_dir / target.ref / target.app.name / "state.json")
        if state.active is not None:
            names += target.app.domains
        for preview in sorted(state.previews):
            names += preview_hosts(preview, target.app.domains)
    return names


def reconcile(ctx: Context, projects: Iterable[EdgeProject]) -> EdgeReport:
    report = EdgeReport()
    for target in deployed_targets(ctx.settings.state_dir, projects):
        try:
            with app_lock(ctx, target, timeout_s=0):
                _reconcile_app(ctx, target, report)
        except DeployBusy:
            report.warnings.append(f"{target.key}: a deploy or rollback is running; checked at the next apply")
        except Exception as exc:  # one app's trouble must not hide the others'
            report.errors.append(f"{target.key}: {type(exc).__name__}: {exc}")
    return report


def _reconcile_app(ctx: Context, target: Target, report: EdgeReport) -> None:
    state = AppState.load(ctx.app_dir(target) / "state.json")
    for number in clean_orphans(ctx, target, state):
        report.done.append(f"{target.key}: removed release {number}, left by an interrupted deploy")
    present = {r.number: r for r in ctx.docker.releases(target.ref, target.app.name)}
    serving: list[tuple[int, str | None]] = [(state.active, None)] if state.active is not None else []
    serving += [(number, name) for name, number in sorted(state.previews.items())]
    for number, preview in serving:
        what = f"{target.key} preview {preview!r}" if preview is not None else target.key
        release = present.get(number)
        if release is None:
            way = f"nextmavens deploy {target.org}/{target.ref} {target.app.name}"
            way += f" --preview {preview}" if preview is not None else " (or rollback)"
            report.errors.append(f"{what}: the container of release {number}, which nginx serves, is gone: {way}")
            continue
        if not release.running:
            ctx.docker.start(release.name)
            report.done.append(f"{what}: release {number} was not running; started again")
        port = healthy_port(ctx, target, release.name)
        if port is None:
            report.errors.append(f"{what}: release {number} does not answer {target.app.health_path} with 2xx")
            continue
        if switch(ctx, target, number, port, on_refused=lambda: None, preview=preview):
            report.done.append(f"{what}: nginx updated for release {number} (127.0.0.1:{port})")


class HostApps:
    """The edge runtime's apps hook on a host: the release flow's context is made on first use (the docker SDK
    connects then), so an apply with no apps never touches Docker from here."""

    def __init__(self, make_context: Callable[[], Context], state_dir: Path) -> None:
        self._make = make_context
        self._state_dir = state_dir
        self._context: Context | None = None

    def context(self) -> Context:
        if self._context is None:
            self._context = self._make()
        return self._context

    def served_names(self, projects: Sequence[EdgeProject]) -> list[str]:
        return served_names(self._state_dir, projects)  # the apps' certificates even while Docker is down

    def reconcile(self, projects: Sequence[EdgeProject]) -> EdgeReport:
        try:
            ctx = self.context()
        except Exception as exc:
            return EdgeReport(errors=[f"apps: not checked, Docker is not reachable: {type(exc).__name__}: {exc}"])
        return reconcile(ctx, projects)

    def remove_project(self, ref: str) -> EdgeReport:
        if not (self._state_dir / ref).is_dir():
            return EdgeReport()  # no app of it was ever deployed here (its network is made by a deploy)
        try:
            ctx = self.context()
        except Exception as exc:
            return EdgeReport(errors=[f"{ref}: apps not removed, Docker is not reachable: {type(exc).__name__}: {exc}"])
        return remove_project(ctx, ref)


def host_context(host: EdgeHost, docker: DockerPort, say: Callable[[str], None]) -> Context:
    """The release flow's context on a host, from its edge settings file (which has `apps`)."""
    if host.config.apps is None:
        raise ValueError("the edge settings file has no `apps` settings (written by an older deploy)")
    return Context(
        settings=host.config.apps,
        edge=host.settings,
        docker=docker,
        nginx_test=tuple(host.config.nginx_test),
        nginx_reload=tuple(host.config.nginx_reload),
        say=say,
        edge_site=host.config.paths.nginx_site,
    )


def remove_project(ctx: Context, ref: str) -> EdgeReport:
    """Everything of a destroyed project's apps on this host; the apps are the folders of its state directory
    (a destroyed project's manifest no longer lists them)."""
    report = EdgeReport()
    folder = ctx.settings.state_dir / ref
    apps = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    files: list[NginxApplier] = []
    removed: list[str] = []
    for app in apps:
        try:
            target = Target("", ref, App(name=app))
        except ValueError:
            report.warnings.append(f"{ref}: {folder / app} is not an app's folder; left as it is")
            continue
        for release in ctx.docker.releases(ref, app):
            remove_release(ctx, target, release.number)
        own = nginx_applier(ctx, target, None)
        previews = sorted(ctx.settings.nginx_dir.glob(f"{conf_filename(ref, app)[:-5]}--preview-*.conf"))
        files += [own, *(replace(own, conf_path=path) for path in previews)]
        removed.append(app)
    remove_managed(files)  # every app file of the project with one `nginx -t` and one reload
    report.done += [f"{ref}: app {app} removed (containers, images, nginx files)" for app in removed]
    for base in (ctx.settings.state_dir, ctx.settings.secrets_dir):
        shutil.rmtree(base / ref, ignore_errors=True)
    network = app_network(ref)
    try:
        if ctx.docker.remove_network(network, {LABEL_PROJECT: ref}):
            report.done.append(f"{ref}: docker network {network} removed")
    except Exception as exc:
        report.errors.append(f"{ref}: docker network {network} not removed: {exc}")
    return report


def host_apps(host: EdgeHost) -> HostApps | None:
    """The apps hook of an apply (apps/reconcile.py), where the settings file has app deployments."""
    apps = host.config.apps
    if apps is None:
        return None

    def make() -> Context:
        from nextmavens.apps.dockerops import SdkDocker

        return host_context(host, SdkDocker.from_env(), lambda line: None)

    return HostApps(make, apps.state_dir)
