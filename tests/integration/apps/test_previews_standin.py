"""Previews and orphans through the release flow, against a real nginx and the stand-in docker engine: a preview
served at NAME.<domain> beside the app's own release, the same health gate, redeployed and removed; releases an
interrupted deploy left removed by the next deploy or by reconcile, never a container we did not label."""

from __future__ import annotations

import json
import time

import pytest

from nextmavens.apps.dockerops import RunSpec
from nextmavens.apps.release import (
    AppState,
    ReleaseFailed,
    deploy,
    releases_view,
    remove_preview,
    rollback,
)
from nextmavens.apps.upstream import conf_filename
from tests.integration.apps.stage import NAME, leave_orphan, served, source
from tests.support.localnginx import http_get

pytestmark = pytest.mark.integration
PREVIEW_HOST = f"pr-1.{NAME}"
VALUES = {"API_KEY": "k"}


def not_served(port: int, host: str) -> None:
    """Bounded poll until nginx no longer answers `host` from an app (the placeholder closes the connection)."""
    deadline = time.monotonic() + 10
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = http_get(port, host)[0]
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{host} is still served: {seen}")


def test_a_preview_runs_beside_the_release_and_is_removed(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    first = deploy(ctx, target, source(tmp, "p1"), "b" * 40, VALUES, preview="pr-1")
    assert first.release == 2 and served(port, "p1", PREVIEW_HOST) and served(port, "v1")
    state = AppState.load(ctx.app_dir(target) / "state.json")
    assert (state.active, state.previous, state.previews) == (1, None, {"pr-1": 2})
    assert (ctx.settings.nginx_dir / conf_filename("shop", "web", "pr-1")).is_file()
    assert docker.containers["nm-app-shop--web-r2"].labels["io.nextmavens.preview"] == "pr-1"

    again = deploy(ctx, target, source(tmp, "p2"), "c" * 40, VALUES, preview="pr-1")
    assert (again.release, again.previous) == (3, 2) and served(port, "p2", PREVIEW_HOST)
    assert "nm-app-shop--web-r2" not in docker.containers and "nextmavens-app/shop--web:r2" not in docker.images
    assert [(r["release"], r["state"], r.get("preview")) for r in releases_view(ctx, target)] == [
        (3, "preview", "pr-1"),
        (1, "active", None),
    ]

    with pytest.raises(ReleaseFailed, match="never answered /health"):  # the same health gate
        deploy(ctx, target, source(tmp, "p3", healthy=False), "d" * 40, VALUES, preview="pr-1")
    assert served(port, "p2", PREVIEW_HOST) and "nm-app-shop--web-r4" not in docker.containers

    own = deploy(ctx, target, source(tmp, "v2"), "e" * 40, VALUES)  # the app's own deploy leaves the preview be
    assert (own.release, own.previous) == (5, 1) and served(port, "v2") and served(port, "p2", PREVIEW_HOST)
    assert rollback(ctx, target, None, VALUES).release == 1  # a preview is never a rollback target
    assert served(port, "v1")

    assert remove_preview(ctx, target, "pr-1") == [3]
    not_served(port, PREVIEW_HOST)
    assert served(port, "v1")
    assert "nm-app-shop--web-r3" not in docker.containers and "nextmavens-app/shop--web:r3" not in docker.images
    assert not (ctx.settings.nginx_dir / conf_filename("shop", "web", "pr-1")).exists()
    assert AppState.load(ctx.app_dir(target) / "state.json").previews == {}
    with pytest.raises(ReleaseFailed, match="no preview 'pr-1'"):
        remove_preview(ctx, target, "pr-1")


def test_a_preview_needs_a_valid_name_and_a_domain(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    with pytest.raises(ReleaseFailed, match="preview name"):
        deploy(ctx, target, source(tmp, "p1"), "a" * 40, VALUES, preview="x;include /etc/passwd")
    bare = type(target)(target.org, target.ref, target.app.model_copy(update={"domains": []}))
    with pytest.raises(ReleaseFailed, match="declares no domains"):
        deploy(ctx, bare, source(tmp, "p2"), "a" * 40, VALUES, preview="pr-1")
    with pytest.raises(ReleaseFailed, match="preview name"):
        remove_preview(ctx, target, "../x")
    assert docker.images == {} and list(ctx.settings.nginx_dir.glob("nextmavens-app-*")) == []


def test_an_interrupted_deploys_release_is_removed_by_the_next_deploy_and_nothing_else(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    orphan = leave_orphan(docker, tmp, 2)
    stale_preview = leave_orphan(docker, tmp, 3, preview="pr-9")
    foreign = "someone-elses"
    image = docker.build(source(tmp, "x"), "Dockerfile", "other:1", {}, 256, print)
    docker.run(RunSpec(foreign, image, 3000, {}, {"io.nextmavens.app": "web"}, None, 256, 64))  # no release label
    state = json.loads((ctx.app_dir(target) / "state.json").read_text())
    assert state["served"] == [1]

    second = deploy(ctx, target, source(tmp, "v2"), "b" * 40, VALUES)
    assert second.release == 4 and served(port, "v2")
    assert orphan not in docker.containers and stale_preview not in docker.containers
    assert "nextmavens-app/shop--web:r2" not in docker.images
    assert foreign in docker.containers and docker.running(foreign)
    assert any("left by an interrupted deploy" in line for line in lines)


def test_a_state_file_from_before_served_was_recorded_removes_nothing(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    kept = leave_orphan(docker, tmp, 2)
    path = ctx.app_dir(target) / "state.json"
    path.write_text(json.dumps({"active": 1, "previous": None, "last": 2}))  # the file an older release wrote
    deploy(ctx, target, source(tmp, "v2"), "b" * 40, VALUES)
    assert kept in docker.containers  # unknown whether it ever served: kept for rollback, pruned by retain
    assert json.loads(path.read_text())["served"] == [1, 2, 3]
