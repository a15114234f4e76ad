"""The release flow of one app on the host: build, boot, health, switch, drain, prune; and rollback.

deploy: detect and print the plan -> build the image (labels: org, project, app, commit, release) -> start the new
container on the project's own apps network (never the platform's) with its memory limit, a loopback-only port
and its secrets file -> wait until `health_path` answers 2xx (group data's timeout and interval) -> write the
app's nginx file with the new port (`nginx -t`, reload; the last good file kept) -> record active/previous -> let
the old release drain -> stop it (never remove: it is the rollback) -> prune releases beyond `retain` with their
images, never the active or previous one. A release that is never healthy is stopped and removed, and nothing
switches.

rollback: the retained container of a release starts again (no build), with its secrets file rewritten from the
current values, and goes through the same health check and switch.

preview (`deploy(..., preview=NAME)`): the same build, boot and health gate, then nginx serves the release at
`NAME.<domain>` for each of the app's domains from a file and upstream of its own; the app's own release, its
state and its retained releases are untouched. The preview's release before is removed after the drain (a
preview keeps no rollback). `remove_preview` takes out its nginx file, container, image and secrets file.

Orphans: a release an interrupted deploy left (labelled by us, never switched to, not a preview's current one) is
removed by the next deploy of the app or by `reconcile`; nothing without our labels is ever looked at.

Deploys of one app are serialized by a lock of their own (a file lock per app): the apply lock is not held while
an image builds. Secrets are written to a 0600 file owned by the image's user, bound read-only into the
container and loaded by the entrypoint wrapper (dockerops.SECRETS_LOADER): never in the container's settings.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shlex
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from nextmavens.apps.detect import detect
from nextmavens.apps.dockerfiles import render_dockerfile
from nextmavens.apps.dockerops import SECRETS_LOADER, DockerPort, RunSpec
from nextmavens.apps.previews import platform_conflicts
from nextmavens.apps.releases import (
    LABEL_PROJECT,
    check_preview_name,
    foreign_labels,
    orphans,
    preview_hosts,
    release_labels,
    release_names,
    rollback_target,
    to_prune,
)
from nextmavens.apps.source import read_source
from nextmavens.apps.upstream import conf_filename, edge_server_names, render_app_nginx
from nextmavens.edge.appsettings import AppDeploySettings
from nextmavens.edge.inputs import platform_name_problem
from nextmavens.edge.nginx import NginxApplier
from nextmavens.edge.settings import EdgeSettings
from nextmavens.files import write_atomic
from nextmavens.manifest.models import App
from nextmavens.naming import app_network

RENDERED_DOCKERFILE = ".nextmavens.Dockerfile"
LOG_TAIL_LINES = 50


class ReleaseFailed(RuntimeError):
    """Nothing switched: the release that was serving still serves."""


class DeployBusy(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    org: str
    ref: str
    app: App

    @property
    def key(self) -> str:
        return f"{self.org}/{self.ref} {self.app.name}"


def http_status(url_host: str, port: int, path: str, timeout: float) -> int | None:
    """The status of one GET (redirects not followed), None when nothing answered in time."""
    conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": "localhost", "User-Agent": "nextmavens-health"})
        response = conn.getresponse()
        response.read(64 * 1024)
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@dataclass
class Context:
    settings: AppDeploySettings
    edge: EdgeSettings
    docker: DockerPort
    nginx_test: Sequence[str] = ("nginx", "-t", "-q")
    nginx_reload: Sequence[str] = ("nginx", "-s", "reload")
    say: Callable[[str], None] = print
    probe: Callable[[str, int, str, float], int | None] = http_status
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    certificates: Collection[str] | None = None  # None: names whose live certificate files exist
    # The edge's nginx file (EdgePaths.nginx_site): its server names are never an app's. None: none to read.
    edge_site: Path | None = None

    def app_dir(self, target: Target) -> Path:
        return self.settings.state_dir / target.ref / target.app.name

    def secrets_path(self, target: Target, release: int) -> Path:
        return self.settings.secrets_dir / target.ref / target.app.name / f"r{release}.env"


@dataclass
class AppState:
    active: int | None = None
    previous: int | None = None
    last: int = 0
    # Releases nginx ever served (orphans are the others); None in a file written before it was recorded.
    served: list[int] | None = field(default_factory=list)
    previews: dict[str, int] = field(default_factory=dict)  # preview name -> the release it serves

    @classmethod
    def load(cls, path: Path) -> AppState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        served = data.get("served")
        return cls(
            data.get("active"),
            data.get("previous"),
            int(data.get("last", 0)),
            [int(n) for n in served] if isinstance(served, list) else None,
            {str(k): int(v) for k, v in (data.get("previews") or {}).items()},
        )

    def save(self, path: Path) -> None:
        data = {
            "active": self.active,
            "previous": self.previous,
            "last": self.last,
            "served": self.served,
            "previews": self.previews,
        }
        write_atomic(path, json.dumps(data) + "\n")

    def switched(self, number: int, known: Collection[int]) -> None:
        """`number` now serves; `known`: the releases that exist (a file without `served` adopts them all)."""
        if self.served is None:
            self.served = sorted(known)
        self.served = sorted({*self.served, number})
        self.previous, self.active = self.active, number


@dataclass
class Outcome:
    release: int
    port: int
    previous: int | None
    pruned: list[int] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def app_lock(ctx: Context, target: Target, timeout_s: float | None = None) -> Iterator[None]:
    """One deploy or rollback of an app at a time; waits up to `timeout_s` (default lock_timeout_s), then
    DeployBusy."""
    folder = ctx.app_dir(target)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(folder / "deploy.lock", "a+")  # noqa: SIM115 - held for the whole block
    try:
        wait = ctx.settings.lock_timeout_s if timeout_s is None else timeout_s
        deadline = ctx.clock() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if ctx.clock() >= deadline:
                    raise DeployBusy(
                        f"another deploy or rollback of {target.key} is running (waited "
                        f"{wait:.0f} s)"
                    ) from None
                ctx.sleep(0.2)
        yield
    finally:
        handle.close()


def missing_secrets(target: Target, values: Mapping[str, str]) -> list[str]:
    return [name for name in target.app.secrets if name not in values]


def secrets_text(values: Mapping[str, str]) -> str:
    """`NAME='value'` lines a POSIX shell reads literally (single-quoted, quotes escaped)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))


def _write_secrets(ctx: Context, target: Target, release: int, values: Mapping[str, str], uid: int) -> Path:
    path = ctx.secrets_path(target, release)
    for folder in (ctx.settings.secrets_dir, path.parent.parent, path.parent):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)  # root's; the container sees only the bound file
    write_atomic(path, secrets_text({n: values[n] for n in target.app.secrets}), 0o600)
    if os.geteuid() == 0:
        os.chown(path, uid, -1)
    return path


def _image_user_uid(user: str) -> int:
    name = user.split(":", 1)[0]
    if not name or name == "root":
        return 0
    if name.isdigit():
        return int(name)
    raise ReleaseFailed(
        f"the image runs as user {user!r}: an app with secrets needs a numeric USER (uid) so its 0600 secrets file "
        "can be given to that uid"
    )


def deploy(
    ctx: Context,
    target: Target,
    source: Path,
    commit: str,
    secret_values: Mapping[str, str],
    preview: str | None = None,
    locked: bool = False,
) -> Outcome:
    """Build `source` (a folder holding the commit's tree) and release it, or run it as preview `preview`;
    ReleaseFailed leaves traffic as it was. `locked`: the caller holds the app's lock already (it took it before
    unpacking the source, so parallel uploads of one app wait instead of each taking disk)."""
    started = ctx.clock()
    missing = missing_secrets(target, secret_values)
    if missing:
        raise ReleaseFailed(
            f"{target.key}: secrets without a value: {', '.join(missing)} "
            f"(nextmavens secrets set {target.org}/{target.ref} {target.app.name} NAME)"
        )
    if preview is not None:
        check_preview_target(ctx, target, preview)
    with nullcontext() if locked else app_lock(ctx, target):
        state_file = ctx.app_dir(target) / "state.json"
        state = AppState.load(state_file)
        existing = ctx.docker.releases(target.ref, target.app.name)
        number = max([state.last, *(r.number for r in existing)]) + 1
        state.last = number
        state.save(state_file)  # a number is given once, whatever happens next
        cleaned = clean_orphans(ctx, target, state)
        existing = [r for r in existing if r.number not in cleaned]
        plan = detect(target.app.build, read_source(source))
        what = f"preview {preview!r}, release" if preview is not None else "release"
        ctx.say(f"{target.key}: {what} {number} of commit {commit[:12]}")
        for line in plan.lines():
            ctx.say(f"  {line}")
        dockerfile = plan.dockerfile or RENDERED_DOCKERFILE
        if plan.dockerfile is None:
            (source / RENDERED_DOCKERFILE).write_text(
                render_dockerfile(plan, target.app.port, ctx.settings.images.model_dump())
            )
        names = release_names(target.ref, target.app.name, number)
        labels = release_labels(target.org, target.ref, target.app.name, commit, number, preview)
        ctx.say(f"building {names.image}")
        try:
            image_id = ctx.docker.build(
                source, dockerfile, names.image, labels, ctx.settings.build_memory_mb, lambda line: ctx.say(f"  {line}")
            )
        except Exception as exc:
            raise ReleaseFailed(f"{target.key}: the build of release {number} failed: {exc}") from None
        try:
            port = _boot_new(ctx, target, number, image_id, labels, secret_values)
        except ReleaseFailed:
            ctx.docker.remove_image(names.image)
            raise
        if preview is not None:
            return _release_preview(ctx, target, state, preview, number, port, started)
        previous = state.active
        switch(ctx, target, number, port, on_refused=lambda: _discard(ctx, target, number))
        state.switched(number, [r.number for r in existing if not r.preview])
        state.save(state_file)
        _retire(ctx, target, previous)
        pruned = prune(ctx, target, state)
        return Outcome(number, port, previous, pruned, ctx.clock() - started)


def check_preview_target(ctx: Context, target: Target, preview: str) -> None:
    """ReleaseFailed unless the preview has hosts to serve (the app declares domains) and none is the platform's."""
    if not target.app.domains:
        raise ReleaseFailed(f"{target.key}: the app declares no domains, so a preview has no NAME.<domain> to serve")
    try:
        platform = platform_conflicts(ctx.edge, preview, target.app.domains)
    except ValueError as exc:
        raise ReleaseFailed(f"{target.key}: {exc}") from None
    if platform:
        names = "; ".join(platform)
        raise ReleaseFailed(f"{target.key}: preview {preview!r} would serve the platform's names: {names}")


def _release_preview(
    ctx: Context, target: Target, state: AppState, preview: str, number: int, port: int, started: float
) -> Outcome:
    """Serve release `number` as the preview, then remove the preview's release before (after the drain)."""
    before = state.previews.get(preview)
    switch(ctx, target, number, port, on_refused=lambda: remove_release(ctx, target, number), preview=preview)
    state.previews[preview] = number
    state.save(ctx.app_dir(target) / "state.json")
    if before is not None:
        ctx.sleep(ctx.settings.drain_s)
        remove_release(ctx, target, before)
        ctx.say(f"removed preview {preview!r}'s release {before} (a preview keeps no rollback)")
    return Outcome(number, port, before, [], ctx.clock() - started)


def remove_preview(ctx: Context, target: Target, preview: str) -> list[int]:
    """Take preview `preview` out: its nginx file (`nginx -t`, reload), then its containers, images and secrets
    files. The releases removed; ReleaseFailed when there is no such preview."""
    try:
        check_preview_name(preview)
    except ValueError as exc:
        raise ReleaseFailed(f"{target.key}: {exc}") from None
    with app_lock(ctx, target):
        state_file = ctx.app_dir(target) / "state.json"
        state = AppState.load(state_file)
        numbers = [r.number for r in ctx.docker.releases(target.ref, target.app.name) if r.preview == preview]
        applier = nginx_applier(ctx, target, preview)
        if not numbers and preview not in state.previews and not applier.conf_path.exists():
            raise ReleaseFailed(f"{target.key}: no preview {preview!r}")
        if applier.remove():
            ctx.say(f"nginx no longer serves preview {preview!r}")
        for number in numbers:
            remove_release(ctx, target, number)
        state.previews.pop(preview, None)
        state.save(state_file)
        ctx.say(f"removed preview {preview!r} (releases {', '.join(map(str, numbers)) or 'none'})")
        return numbers


def clean_orphans(ctx: Context, target: Target, state: AppState) -> list[int]:
    """Remove the releases an interrupted deploy left (see releases.orphans), and a preview's releases other than
    the one it serves. The caller holds the app's lock, so no deploy is in flight."""
    found = ctx.docker.releases(target.ref, target.app.name)
    own = [r.number for r in found if not r.preview]
    keep = {n for n in (state.active, state.previous) if n is not None}
    removed = orphans(own, state.served, state.active, keep)
    removed += [r.number for r in found if r.preview and state.previews.get(r.preview) != r.number]
    for number in sorted(removed):
        remove_release(ctx, target, number)
        ctx.say(f"removed release {number}, left by an interrupted deploy (never served)")
    return sorted(removed)


def remove_release(ctx: Context, target: Target, number: int) -> None:
    names = release_names(target.ref, target.app.name, number)
    ctx.docker.remove(names.container)
    ctx.docker.remove_image(names.image)
    ctx.secrets_path(target, number).unlink(missing_ok=True)


def rollback(ctx: Context, target: Target, wanted: int | None, secret_values: Mapping[str, str]) -> Outcome:
    """Switch to a retained release (the previous one by default): its container starts again, no build."""
    started = ctx.clock()
    with app_lock(ctx, target):
        state_file = ctx.app_dir(target) / "state.json"
        state = AppState.load(state_file)
        present = {r.number: r for r in ctx.docker.releases(target.ref, target.app.name) if not r.preview}
        try:
            number = rollback_target(present, state.active, state.previous, wanted)
        except LookupError as exc:
            raise ReleaseFailed(f"{target.key}: {exc}") from None
        names = release_names(target.ref, target.app.name, number)
        ctx.say(f"{target.key}: rolling back to release {number} (commit {present[number].commit[:12]})")
        if target.app.secrets:
            missing = missing_secrets(target, secret_values)
            if missing:
                raise ReleaseFailed(f"{target.key}: secrets without a value: {', '.join(missing)}")
            user, _, _, _ = ctx.docker.image_config(present[number].image or names.image)
            _write_secrets(ctx, target, number, secret_values, _image_user_uid(user))
        if not present[number].running:
            ctx.docker.start(names.container)
        port = healthy_port(ctx, target, names.container)
        if port is None:
            ctx.docker.stop(names.container, ctx.settings.stop_timeout_s)
            raise ReleaseFailed(f"{target.key}: release {number} did not become healthy; nothing switched")
        previous = state.active
        switch(ctx, target, number, port, on_refused=lambda: ctx.docker.stop(names.container, 10))
        state.switched(number, present)
        state.save(state_file)
        _retire(ctx, target, previous)
        return Outcome(number, port, previous, [], ctx.clock() - started)


def _boot_new(
    ctx: Context, target: Target, number: int, image_id: str, labels: Mapping[str, str], values: Mapping[str, str]
) -> int:
    """Start release `number` from `image_id`, the image its build made (the tag is only a name for people)."""
    names = release_names(target.ref, target.app.name, number)
    user, entrypoint, cmd, image_labels = ctx.docker.image_config(image_id)
    foreign = foreign_labels(image_labels, labels)
    if foreign:  # the tag is removed by the caller; nothing was started
        raise ReleaseFailed(
            f"{target.key}: the image of release {number} sets labels the platform reserves: {', '.join(foreign)} "
            "(remove these LABELs, or the base image carrying them, from the Dockerfile); nothing was started"
        )
    # Tenant code never joins the platform network (postgres-meta, Studio, Kong's admin API, every project's
    # services): each project's apps get a bridge of their own; nginx reaches them on their loopback port.
    network = app_network(target.ref)
    try:
        ctx.docker.ensure_network(network, {LABEL_PROJECT: target.ref})
    except Exception as exc:  # before any secrets file: nothing to clean up but the image (the caller's)
        raise ReleaseFailed(f"{target.key}: the apps network {network} is not usable: {exc}") from None
    secrets_file = None
    run_entrypoint: Sequence[str] | None = None
    run_command: Sequence[str] | None = None
    if target.app.secrets:
        secrets_file = _write_secrets(ctx, target, number, values, _image_user_uid(user))
        run_entrypoint, run_command = SECRETS_LOADER, [*entrypoint, *cmd]
    environment = {**target.app.env, "PORT": str(target.app.port)}
    ctx.docker.run(
        RunSpec(
            name=names.container,
            image=image_id,
            container_port=target.app.port,
            environment=environment,
            labels=labels,
            network=network,
            memory_mb=target.app.memory_mb,
            pids_limit=ctx.settings.pids_limit,
            secrets_file=secrets_file,
            entrypoint=run_entrypoint,
            command=run_command,
        )
    )
    port = healthy_port(ctx, target, names.container)
    if port is None:
        _discard(ctx, target, number)
        raise ReleaseFailed(f"{target.key}: release {number} never answered {target.app.health_path} with 2xx "
                            f"within {ctx.settings.health_timeout_s:.0f} s; it was stopped and nothing switched")
    return port


def healthy_port(ctx: Context, target: Target, container: str) -> int | None:
    """The loopback port once `health_path` answers 2xx; None at the deadline or when the container exits (its last
    log lines are printed)."""
    settings = ctx.settings
    deadline = ctx.clock() + settings.health_timeout_s
    port = None
    last = "no answer"
    while ctx.clock() < deadline:
        if not ctx.docker.running(container):
            last = "the container exited"
            break
        port = port or ctx.docker.host_port(container, target.app.port)
        if port is not None:
            status = ctx.probe("127.0.0.1", port, target.app.health_path, settings.health_request_timeout_s)
            if status is not None and 200 <= status < 300:
                ctx.say(f"healthy: {target.app.health_path} answered {status} on 127.0.0.1:{port}")
                return port
            last = f"status {status}" if status is not None else "no answer"
        ctx.sleep(settings.health_interval_s)
    ctx.say(f"unhealthy ({last}); the container's last {LOG_TAIL_LINES} log lines:")
    try:
        for line in ctx.docker.logs_tail(container, LOG_TAIL_LINES).splitlines():
            ctx.say(f"  | {line}")
    except Exception as exc:  # the log is a courtesy: its absence must not hide the failure
        ctx.say(f"  (no log: {type(exc).__name__})")
    return None


def _discard(ctx: Context, target: Target, number: int) -> None:
    names = release_names(target.ref, target.app.name, number)
    ctx.docker.remove(names.container)
    ctx.secrets_path(target, number).unlink(missing_ok=True)


def switch(
    ctx: Context,
    target: Target,
    number: int,
    port: int,
    on_refused: Callable[[], None],
    preview: str | None = None,
) -> bool:
    """nginx serves release `number` on `port` for the app's names (or the preview's); True when its file changed."""
    if not target.app.domains:
        ctx.say("the app declares no domains: nothing to switch in nginx (reachable on loopback only)")
        return False
    hosts = preview_hosts(preview, target.app.domains) if preview is not None else list(target.app.domains)
    # Only lineages named after this app's (or preview's) own hosts, never a platform name's: render refuses those.
    own = [h for h in hosts if platform_name_problem(ctx.edge, h) is None]
    if ctx.certificates is None:
        live = Path(ctx.edge.letsencrypt_dir) / "live"
        certificates = [d for d in own if (live / d / "fullchain.pem").is_file()]
    else:
        certificates = [d for d in own if d in ctx.certificates]
    try:
        edge_names = edge_server_names(ctx.edge_site.read_text()) if ctx.edge_site and ctx.edge_site.exists() else set()
        text = render_app_nginx(
            ctx.edge,
            target.ref,
            target.app.name,
            target.app.domains,
            port,
            number,
            certificates,
            preview=preview,
            edge_names=edge_names,
        )
    except ValueError as exc:
        on_refused()
        raise ReleaseFailed(f"{target.key}: {exc}") from None
    try:
        changed = nginx_applier(ctx, target, preview).apply(text)
    except Exception:
        on_refused()
        raise
    if changed:
        ctx.say(f"switched: {', '.join(hosts)} -> release {number} (127.0.0.1:{port})")
    return changed


def nginx_applier(ctx: Context, target: Target, preview: str | None) -> NginxApplier:
    return NginxApplier(
        ctx.settings.nginx_dir / conf_filename(target.ref, target.app.name, preview),
        ctx.app_dir(target),
        ctx.nginx_test,
        ctx.nginx_reload,
    )


def _retire(ctx: Context, target: Target, previous: int | None) -> None:
    """After the drain, stop the release that served before (kept for rollback)."""
    if previous is None:
        return
    ctx.sleep(ctx.settings.drain_s)
    name = release_names(target.ref, target.app.name, previous).container
    try:
        ctx.docker.stop(name, ctx.settings.stop_timeout_s)
        ctx.say(f"stopped release {previous} after a {ctx.settings.drain_s:.0f} s drain (kept for rollback)")
    except Exception as exc:
        ctx.say(f"release {previous} could not be stopped ({type(exc).__name__}); it is no longer served")


def prune(ctx: Context, target: Target, state: AppState) -> list[int]:
    numbers = [r.number for r in ctx.docker.releases(target.ref, target.app.name) if not r.preview]
    removed = to_prune(numbers, target.app.retain, state.active, state.previous)
    for number in removed:
        remove_release(ctx, target, number)
        ctx.say(f"pruned release {number} (beyond retain={target.app.retain})")
    return removed


def releases_view(ctx: Context, target: Target) -> list[dict[str, object]]:
    state = AppState.load(ctx.app_dir(target) / "state.json")
    rows: list[dict[str, object]] = []
    for found in reversed(ctx.docker.releases(target.ref, target.app.name)):
        role = "active" if found.number == state.active else "previous" if found.number == state.previous else ""
        row: dict[str, object] = {
            "release": found.number,
            "commit": found.commit,
            "created": found.created,
            "running": found.running,
            "state": "preview" if found.preview else role or "retained",
        }
        if found.preview:
            row["preview"] = found.preview
        rows.append(row)
    return rows
