"""The release flow against a real nginx and a stand-in docker engine (tests/support/standindocker.py): deploy,
a second deploy under a load loop in another process with no failed request, an unhealthy release that never
takes traffic, rollback without a build, pruning beyond retain, secrets only in a 0600 file, one deploy of an app
at a time. The sandbox e2e test runs the same flow on a real Docker engine."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from nextmavens.apps import cli
from nextmavens.apps.dockerops import RunSpec
from nextmavens.apps.release import (
    DeployBusy,
    ReleaseFailed,
    Target,
    deploy,
    releases_view,
    rollback,
)
from nextmavens.apps.upstream import conf_filename
from nextmavens.cliparts import Failure
from tests.integration.apps.stage import NAME, SECRET, lock_held_elsewhere, served, source
from tests.support import loadloop
from tests.support.localnginx import wait_settled
from tests.support.projects import write_project

pytestmark = pytest.mark.integration


def test_deploy_switch_under_load_unhealthy_rollback_and_prune(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    values = {"API_KEY": SECRET}
    first = deploy(ctx, target, source(tmp, "v1"), "a" * 40, values)
    assert (first.release, first.previous) == (1, None) and served(port, "v1")
    assert any(line.startswith("  build: dockerfile") for line in lines)
    # the load measures the switch, not the tail of the first deploy's reload (a worker of the config with no app)
    wait_settled(tmp / "nginx")

    stop = tmp / "stop"
    loop = loadloop.start(port, NAME, "/", stop, max_s=60)
    try:
        time.sleep(0.5)
        second = deploy(ctx, target, source(tmp, "v2"), "b" * 40, values)
        time.sleep(0.5)
    finally:
        result = loadloop.finish(loop, stop)
    assert result["failed"] == 0 and result["ok"] > 10, result
    assert (second.release, second.previous) == (2, 1) and served(port, "v2")
    assert not docker.running("nm-app-shop--web-r1")  # stopped after the drain, kept for rollback

    with pytest.raises(ReleaseFailed, match="never answered /health with 2xx"):
        deploy(ctx, target, source(tmp, "v3", healthy=False), "c" * 40, values)
    assert served(port, "v2")
    assert "nm-app-shop--web-r3" not in docker.containers and "nextmavens-app/shop--web:r3" not in docker.images

    t0 = time.monotonic()
    back = rollback(ctx, target, None, values)
    assert back.release == 1 and time.monotonic() - t0 < 5 and served(port, "v1")
    assert [(r["release"], r["state"]) for r in releases_view(ctx, target)] == [(2, "previous"), (1, "active")]

    assert deploy(ctx, target, source(tmp, "v4"), "d" * 40, values).release == 4  # 3 is never given again
    assert served(port, "v4")
    for version in ("v5", "v6"):
        deploy(ctx, target, source(tmp, version), "e" * 40, values)
    states = [(r["release"], r["state"]) for r in releases_view(ctx, target)]
    assert states == [(6, "active"), (5, "previous"), (4, "retained")]  # retain=2 old ones; 1 and 2 pruned
    assert not {"nextmavens-app/shop--web:r1", "nextmavens-app/shop--web:r2"} & set(docker.images)
    assert not (ctx.settings.secrets_dir / "shop" / "web" / "r1.env").exists()


def test_secrets_reach_only_a_0600_file_bound_into_the_container(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": SECRET})
    (spec,) = docker.runs
    assert spec.environment == {"MODE": "x", "PORT": "3000"}
    assert SECRET not in json.dumps([spec.environment, dict(spec.labels), list(spec.entrypoint or [])])
    assert spec.entrypoint is not None and spec.entrypoint[0] == "/bin/sh" and list(spec.command or []) == ["serve"]
    assert spec.secrets_file is not None
    assert stat.S_IMODE(os.stat(spec.secrets_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spec.secrets_file.parent).st_mode) == 0o700
    assert spec.secrets_file.read_text() == "API_KEY='s3cr3t '\"'\"'quoted'\"'\"' $HOME `x`'\n"
    assert not any(SECRET in line for line in lines)
    assert SECRET not in (ctx.settings.nginx_dir / conf_filename("shop", "web")).read_text()


def test_the_container_starts_from_the_image_id_the_build_returned(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": "x"})
    (spec,) = docker.runs
    _, _, image_id = docker.images["nextmavens-app/shop--web:r1"]
    assert spec.image == image_id and image_id.startswith("sha256:")


def test_apps_run_on_their_projects_own_network_never_the_platforms(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    other = Target("beta", "shop-api", target.app.model_copy(update={"domains": ["api.beta.test"]}))
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": "x"})
    deploy(ctx, other, source(tmp, "v2"), "b" * 40, {"API_KEY": "y"})
    ours, theirs = "nm-app-shop--web-r1", "nm-app-shop-api--web-r1"
    assert ours not in docker.network_members(ctx.edge.platform_network)
    assert theirs not in docker.network_members(ctx.edge.platform_network)
    assert docker.network_members("nextmavens-apps-shop") == [ours]
    assert docker.network_members("nextmavens-apps-shop-api") == [theirs]
    assert docker.networks["nextmavens-apps-shop"][0] == {"io.nextmavens.project": "shop"}
    assert {spec.network for spec in docker.runs} == {"nextmavens-apps-shop", "nextmavens-apps-shop-api"}
    deploy(ctx, target, source(tmp, "v3"), "c" * 40, {"API_KEY": "x"})  # the network exists: used again
    assert docker.network_members("nextmavens-apps-shop") == [ours, "nm-app-shop--web-r2"]


def test_a_network_of_the_apps_name_that_is_not_the_projects_stops_the_release(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    docker.networks["nextmavens-apps-shop"] = ({"io.nextmavens.project": "someone-else"}, [])
    with pytest.raises(ReleaseFailed, match="apps network nextmavens-apps-shop is not usable"):
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": "x"})
    assert docker.runs == [] and docker.images == {}
    assert not (ctx.settings.secrets_dir / "shop" / "web" / "r1.env").exists()


def test_an_image_with_labels_the_platform_reserves_is_refused_and_nothing_starts(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    folder = source(tmp, "v1")
    (folder / "Dockerfile").write_text(
        "FROM scratch\nLABEL com.docker.compose.project=nm-other io.nextmavens.project=other io.nextmavens.memory=1\n"
    )
    with pytest.raises(ReleaseFailed, match=r"reserves: com\.docker\.compose\.project, io\.nextmavens\.memory \("):
        deploy(ctx, target, folder, "a" * 40, {"API_KEY": "x"})
    assert docker.runs == [] and docker.containers == {} and docker.images == {}
    assert not (ctx.settings.secrets_dir / "shop" / "web" / "r1.env").exists()
    assert not (ctx.settings.nginx_dir / conf_filename("shop", "web")).exists()
    # What the refusal prevents: the engine gives a container its image's labels, so a Dockerfile's
    # `io.nextmavens.preview` would make any release count as a preview (memory admission, releases view).
    (folder / "Dockerfile").write_text("FROM scratch\nLABEL io.nextmavens.preview=pr-1\n")
    image = docker.build(folder, "Dockerfile", "tenant:1", {"io.nextmavens.release": "7"}, 256, print)
    docker.run(RunSpec("tenant-run", image, 3000, {}, {}, None, 256, 64))
    assert [(r.name, r.preview) for r in docker.previews()] == [("tenant-run", "pr-1")]


def test_a_missing_secret_stops_the_deploy_before_the_build(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    with pytest.raises(ReleaseFailed, match="secrets without a value: API_KEY"):
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, {})
    assert docker.images == {}


def test_a_second_deploy_of_the_app_waits_for_the_first(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    with (
        lock_held_elsewhere(ctx, target),
        pytest.raises(DeployBusy, match="another deploy or rollback of acme/shop web"),
    ):
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, {"API_KEY": "x"})
    assert deploy(ctx, target, source(tmp, "v1b"), "a" * 40, {"API_KEY": "x"}).release == 1


def test_the_hosts_deploy_takes_the_apps_lock_before_it_reads_the_archive(
    release_stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel uploads of one app wait for the lock before any of them is read or unpacked: with the lock held
    elsewhere, a deploy whose archive is a FIFO nobody writes (reading it would block) is refused at once."""
    ctx, target, docker, port, lines, tmp = release_stage
    projects = tmp / "projects"
    write_project(projects, "acme", "shop", apps=[{"name": "web", "domains": [NAME]}])
    monkeypatch.setattr(cli, "release_context", lambda edge_config, say: ctx)
    fifo = tmp / "upload.tar"
    os.mkfifo(fifo)
    upload_app = Target("acme", "shop", target.app.model_copy(update={"secrets": []}))
    with lock_held_elsewhere(ctx, upload_app), pytest.raises(Failure, match="another deploy or rollback"):
        cli.host_deploy("acme/shop", "web", None, fifo, projects, None, tmp / "key", 1.0, None)
    write_project(projects, "acme", "shop", apps=[{"name": "web", "source": "/srv/site"}])
    with pytest.raises(Failure, match="--archive is for apps whose source is `upload`"):
        cli.host_deploy("acme/shop", "web", None, fifo, projects, None, tmp / "key", 1.0, None)
    assert docker.images == {}
