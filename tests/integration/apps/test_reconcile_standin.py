"""The apps' part of an apply (nextmavens/apps/reconcile.py) against a real nginx and the stand-in docker engine:
after a host reboot the active release runs again (restart policy) and reconcile points nginx at its new port; a
stopped release nginx serves is started again; a gone one is an error naming the way back; orphans are removed,
never a container we did not label; a deploy in progress is left alone; a destroyed project's apps, files and
network go, nobody else's."""

from __future__ import annotations

import pytest

from nextmavens.apps.dockerops import RunSpec
from nextmavens.apps.reconcile import HostApps, reconcile, remove_project, served_names
from nextmavens.apps.release import Context, Target, deploy
from nextmavens.apps.upstream import conf_filename
from nextmavens.edge.inputs import EdgeProject
from tests.integration.apps.stage import NAME, leave_orphan, lock_held_elsewhere, served, source
from tests.support.edgesamples import manifest, secrets_for

pytestmark = pytest.mark.integration
VALUES = {"API_KEY": "k"}


def projects_of(target: Target, *more: Target) -> list[EdgeProject]:
    return [
        EdgeProject(manifest(t.ref, apps=[t.app.model_dump()]), secrets_for(t.ref), org=t.org) for t in (target, *more)
    ]


def test_after_a_reboot_the_active_release_runs_and_nginx_follows_its_new_port(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    deploy(ctx, target, source(tmp, "v2"), "b" * 40, VALUES)
    before = docker.host_port("nm-app-shop--web-r2", 3000)
    assert docker.reboot() == ["nm-app-shop--web-r2"]  # r1 was stopped by the flow: it stays stopped
    after = docker.host_port("nm-app-shop--web-r2", 3000)
    report = reconcile(ctx, projects_of(target))
    assert report.errors == [] and served(port, "v2")
    conf = (ctx.settings.nginx_dir / conf_filename("shop", "web")).read_text()
    assert f"server 127.0.0.1:{after};" in conf
    if after != before:
        assert report.done == [f"acme/shop web: nginx updated for release 2 (127.0.0.1:{after})"]
    assert reconcile(ctx, projects_of(target)).done == []  # nothing to do the second time


def test_a_stopped_release_nginx_serves_is_started_again_previews_too(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    deploy(ctx, target, source(tmp, "p1"), "b" * 40, VALUES, preview="pr-1")
    docker.stop("nm-app-shop--web-r1", 0)
    docker.stop("nm-app-shop--web-r2", 0)
    report = reconcile(ctx, projects_of(target))
    assert report.errors == []
    assert "acme/shop web: release 1 was not running; started again" in report.done
    assert "acme/shop web preview 'pr-1': release 2 was not running; started again" in report.done
    assert served(port, "v1") and served(port, "p1", f"pr-1.{NAME}")


def test_a_gone_release_is_an_error_naming_the_way_back(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    docker.remove("nm-app-shop--web-r1")
    report = reconcile(ctx, projects_of(target))
    assert report.errors == [
        "acme/shop web: the container of release 1, which nginx serves, is gone: "
        "nextmavens deploy acme/shop web (or rollback)"
    ]


def test_reconcile_removes_orphans_and_nothing_it_did_not_label(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    leave_orphan(docker, tmp, 2)
    other = docker.build(source(tmp, "x"), "Dockerfile", "someone/else:1", {}, 256, print)
    docker.run(RunSpec("nm-app-shop--web-r9", other, 3000, {}, {"io.nextmavens.project": "shop"}, None, 256, 64))
    report = reconcile(ctx, projects_of(target))
    assert report.done == ["acme/shop web: removed release 2, left by an interrupted deploy"]
    assert "nm-app-shop--web-r2" not in docker.containers and "nextmavens-app/shop--web:r2" not in docker.images
    assert "nm-app-shop--web-r9" in docker.containers and "someone/else:1" in docker.images


def test_an_app_being_deployed_is_left_to_the_next_run(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    docker.stop("nm-app-shop--web-r1", 0)
    with lock_held_elsewhere(ctx, target):
        report = reconcile(ctx, projects_of(target))
    assert report.warnings == ["acme/shop web: a deploy or rollback is running; checked at the next apply"]
    assert not docker.running("nm-app-shop--web-r1")


def test_names_for_certificates_are_the_deployed_apps_and_previews(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    never = Target("acme", "blog", target.app.model_copy(update={"domains": ["blog.acme.test"]}))
    assert served_names(ctx.settings.state_dir, projects_of(target, never)) == []
    deploy(ctx, target, source(tmp, "p1"), "a" * 40, VALUES, preview="pr-1")
    assert served_names(ctx.settings.state_dir, projects_of(target, never)) == [f"pr-1.{NAME}"]
    deploy(ctx, target, source(tmp, "v1"), "b" * 40, VALUES)
    assert served_names(ctx.settings.state_dir, projects_of(target, never)) == [NAME, f"pr-1.{NAME}"]

    # the apply's hook on a host whose Docker is down: the names still get certificates, reconcile says why not
    def no_docker() -> Context:
        raise ConnectionError("docker.sock: connection refused")

    hook = HostApps(no_docker, ctx.settings.state_dir)
    assert hook.served_names(projects_of(target, never)) == [NAME, f"pr-1.{NAME}"]
    (error,) = hook.reconcile(projects_of(target, never)).errors
    assert error.startswith("apps: not checked, Docker is not reachable: ConnectionError")


def test_a_destroyed_projects_apps_files_and_network_go_and_nobody_elses(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    other = Target("beta", "blog", target.app.model_copy(update={"domains": ["blog.beta.test"]}))
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    deploy(ctx, target, source(tmp, "p1"), "b" * 40, VALUES, preview="pr-1")
    deploy(ctx, other, source(tmp, "b1"), "c" * 40, VALUES)
    # count the root commands: the app's file and its preview's go with one `nginx -t` and one reload
    counts = tmp / "nginx-commands"
    count = 'echo "$0" >> "$COUNTS"; exec "$@"'
    ctx.nginx_test = ("env", f"COUNTS={counts}", "sh", "-c", count, "test", *ctx.nginx_test)
    ctx.nginx_reload = ("env", f"COUNTS={counts}", "sh", "-c", count, "reload", *ctx.nginx_reload)
    report = remove_project(ctx, "shop")
    assert counts.read_text().split() == ["test", "reload"]
    assert report.errors == [], report.errors
    assert report.done == [
        "shop: app web removed (containers, images, nginx files)",
        "shop: docker network nextmavens-apps-shop removed",
    ]
    assert sorted(docker.containers) == ["nm-app-blog--web-r1"]
    assert [tag for tag in docker.images if "shop--" in tag] == []
    assert sorted(p.name for p in ctx.settings.nginx_dir.glob("nextmavens-app-*")) == ["nextmavens-app-blog--web.conf"]
    assert not (ctx.settings.state_dir / "shop").exists() and not (ctx.settings.secrets_dir / "shop").exists()
    assert "nextmavens-apps-shop" not in docker.networks and "nextmavens-apps-blog" in docker.networks
    assert served(port, "b1", "blog.beta.test")
    assert remove_project(ctx, "shop").done == []  # nothing left: nothing done


def test_a_network_of_the_name_that_is_not_the_projects_is_not_removed(release_stage) -> None:
    ctx, target, docker, port, lines, tmp = release_stage
    deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    docker.networks["nextmavens-apps-shop"] = ({"io.nextmavens.project": "someone-else"}, [])
    report = remove_project(ctx, "shop")
    assert report.errors and "not removed" in report.errors[0]
    assert "nextmavens-apps-shop" in docker.networks
