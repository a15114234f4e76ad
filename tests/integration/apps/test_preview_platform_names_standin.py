"""A preview (or an app) can never take over the platform's own names, against a real nginx and the stand-in docker
engine. The attack: an owner declares app domain `example.test` (the parent of platform.example.test), a developer
deploys `--preview platform`; the preview would get a server block for the platform's name with the platform's
live certificate. Refused before anything builds, and nothing is written. An app's own deploy whose name the edge
serves is refused at the switch: the edge's server keeps answering."""

from __future__ import annotations

import subprocess
import time

import pytest

from nextmavens.apps.cli import check_preview
from nextmavens.apps.release import AppState, ReleaseFailed, deploy
from nextmavens.cliparts import Failure
from tests.integration.apps.stage import source
from tests.support.edgesamples import settings
from tests.support.localnginx import http_get
from tests.support.projects import write_project

pytestmark = pytest.mark.integration
VALUES = {"API_KEY": "k"}
PLATFORM = "platform.example.test"


def platform_stage(release_stage, domains: list[str]):
    """The stage with production's name shape and a live certificate lineage for the platform's name."""
    ctx, target, docker, port, lines, tmp = release_stage
    live = tmp / "letsencrypt" / "live" / PLATFORM
    live.mkdir(parents=True)
    (live / "fullchain.pem").write_text("the platform's certificate\n")
    (live / "privkey.pem").write_text("the platform's key\n")
    ctx.edge = settings(
        listen_address="127.0.0.1",
        http_port=ctx.edge.http_port,
        https_port=ctx.edge.https_port,
        api_domain="api.example.test",
        studio_domain="studio.example.test",
        platform_domain=PLATFORM,
        project_studio_domain="studio.example.test",
        letsencrypt_dir=str(tmp / "letsencrypt"),
    )
    ctx.certificates = None  # the switch looks at the live lineages, as on a host
    app = target.app.model_copy(update={"domains": domains})
    return ctx, type(target)(target.org, target.ref, app), docker, port, tmp


def nothing_written(ctx, target, docker) -> None:
    assert docker.images == {} and docker.containers == {}
    assert list(ctx.settings.nginx_dir.glob("nextmavens-app-*")) == []
    assert AppState.load(ctx.app_dir(target) / "state.json").previews == {}


@pytest.mark.parametrize(("preview", "field"), [("platform", "platform_domain"), ("studio", "studio_domain")])
def test_a_preview_named_like_a_platform_name_is_refused_and_nothing_is_written(
    release_stage, preview: str, field: str
) -> None:
    ctx, target, docker, port, tmp = platform_stage(release_stage, ["www.acme.test", "example.test"])
    with pytest.raises(ReleaseFailed, match=rf"'{preview}.example.test' is the platform's own \({field}"):
        deploy(ctx, target, source(tmp, "p1"), "a" * 40, VALUES, preview=preview)
    nothing_written(ctx, target, docker)

    # the host command's check, before the source is even read
    projects = tmp / "projects"
    write_project(projects, "acme", "shop", apps=[{"name": "web", "domains": ["www.acme.test", "example.test"]}])
    with pytest.raises(Failure, match=rf"preview '{preview}' would serve the platform's names: .*\({field}"):
        check_preview(ctx, projects, target, preview)
    nothing_written(ctx, target, docker)


def test_an_app_whose_name_is_the_platforms_is_refused_at_the_switch(release_stage) -> None:
    ctx, target, docker, port, tmp = platform_stage(release_stage, [PLATFORM])
    with pytest.raises(ReleaseFailed, match=r"is the platform's own \(platform_domain.*no server block written"):
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    assert docker.containers == {}  # the new release was discarded
    assert list(ctx.settings.nginx_dir.glob("nextmavens-app-*")) == []


def test_an_app_never_shadows_a_name_the_edge_serves(release_stage) -> None:
    ctx, target, docker, port, tmp = platform_stage(release_stage, ["shop.acme.example"])
    edge_site = ctx.settings.nginx_dir / "nextmavens-edge.conf"
    edge_site.write_text(
        f"server {{\n    listen 127.0.0.1:{port};\n    server_name shop.acme.example;\n    return 200 'edge';\n}}\n"
    )
    subprocess.run(ctx.nginx_reload, check=True)
    edge_answers(port)  # the reload is a signal: wait (bounded) until the new workers answer
    ctx.edge_site = edge_site
    with pytest.raises(ReleaseFailed, match="'shop.acme.example' is served by the edge"):
        deploy(ctx, target, source(tmp, "v1"), "a" * 40, VALUES)
    assert docker.containers == {} and list(ctx.settings.nginx_dir.glob("nextmavens-app-*")) == []
    assert http_get(port, "shop.acme.example")[2] == b"edge"  # no reload since: the edge's server, as before


def edge_answers(port: int) -> None:
    deadline = time.monotonic() + 10
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = http_get(port, "shop.acme.example")[2]
            if seen == b"edge":
                return
        except OSError as exc:
            seen = exc
        time.sleep(0.05)
    raise AssertionError(f"the edge's server never answered: {seen}")
