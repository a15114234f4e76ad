"""Studio for a project started on demand and stopped when idle: STAND-IN test. The real platform service (with its
privileged prefix, as on the host) behind a real nginx, over a real PostgreSQL; the prefix is the Docker STAND-IN's
command (tests/support/studiodocker.py), which runs the product's own `studio start|stop|list` work with a stand-in
engine whose "containers" are the Studio stand-in's processes. The stand-in refuses what Docker refuses (a name in
use or outside Docker's pattern, an unknown image or network, no memory limit)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from nextmavens.apps.dockerops import RunSpec
from nextmavens.control.crypto import load_master_key
from nextmavens.naming import project_names
from nextmavens.platform.studiogate import StudioKeys, cryptojs_decrypt, studio_token
from nextmavens.studiohost import LABEL_STUDIO, StudioHost, container_name, studio_spec
from tests.integration.dashboard.harness import DashboardStage, csrf_of, signed_in_client
from tests.integration.dashboard.test_studio import (
    META_KEY,
    STUDIO,
    open_studio,
    studio_edge,
    tls_get,
)
from tests.support.localnginx import need
from tests.support.repo import REPO
from tests.support.studiodocker import StandinStudioDocker, write_host

pytestmark = pytest.mark.integration

IMAGE = "supabase/studio:2025.06.30-sha-6f5982d"
NETWORK = "nextmavens-studios"
IDLE_S = 4.0


@dataclass
class OnDemand:
    dash: DashboardStage
    https: int
    docker: StandinStudioDocker
    folder: Path
    meta_seen: list[dict[str, str]]


@pytest.fixture(scope="module")
def on_demand(pg_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnDemand]:
    need("nginx")
    base = tmp_path_factory.mktemp("studio-on-demand")
    folder = base / "docker"
    prefix = (sys.executable, "-m", "tests.support.studiodocker", str(folder))
    members = ("admin@acme.test", "boss@globex.test")
    settings = {"studio_max_running": 1, "studio_idle_s": IDLE_S, "studio_reap_s": 0.2}
    with studio_edge(pg_template, base, "nextmavens-studio-demand-", members, privileged_argv=prefix, **settings) as (
        dash,
        (_, https_port, gate_port),
        seen,
    ):
        host = StudioHost(IMAGE, 256, NETWORK, f"http://127.0.0.1:{gate_port}")
        docker = write_host(folder, host, dash.stage.master_key, dash.stage.server.dsn)
        try:
            yield OnDemand(dash, https_port, docker, folder, seen)
        finally:
            docker.close()


def enter(stage: OnDemand, client: httpx.Client, org: str, ref: str, free_within_s: float = 0.0) -> str:
    """Open Studio from the dashboard and follow the ticket through nginx: the nm_studio cookie. `free_within_s`:
    a stopping Studio counts until its stop command has returned, so "busy" is asked again until then."""
    deadline = time.monotonic() + free_within_s
    opened = open_studio(client, org, ref)
    while opened.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
        opened = open_studio(client, org, ref)
    assert opened.status_code == 303, opened.text
    target = urlsplit(opened.headers["location"])
    status, headers, _ = tls_get(stage.https, STUDIO, f"{target.path}?{target.query}")
    assert status == 303
    return headers["set-cookie"].split(";")[0]


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_studio_starts_when_opened_the_cap_refuses_another_and_an_idle_one_stops(on_demand: OnDemand) -> None:
    admin = signed_in_client(on_demand.dash.url, "admin@acme.test")
    boss = signed_in_client(on_demand.dash.url, "boss@globex.test")
    assert on_demand.docker.recorded() == {}
    cookie = enter(on_demand, admin, "acme", "shop")

    # One container, shop's: capped, labelled, on the Studios' network, a token in place of a password
    (name,) = on_demand.docker.recorded()
    shop = on_demand.docker.recorded()[name]
    keys = StudioKeys(load_master_key(on_demand.dash.stage.master_key))
    assert name == container_name("shop") and shop["memory_mb"] == 256 and shop["network"] == NETWORK
    assert shop["labels"] == {LABEL_STUDIO: "shop"}
    env = shop["environment"]
    assert isinstance(env, dict) and env["POSTGRES_PASSWORD"] == studio_token(keys.token, "shop")
    assert env["POSTGRES_DB"] == project_names("shop").database

    # Through nginx to that container, and on to postgres-meta as shop's owner role through the gate
    status, _, body = tls_get(on_demand.https, STUDIO, "/project/default", {"Cookie": cookie})
    assert status == 200 and json.loads(body)["project"] == "shop"
    on_demand.meta_seen.clear()
    status, _, _ = tls_get(on_demand.https, STUDIO, "/api/platform/pg-meta/default/tables", {"Cookie": cookie})
    assert status == 200
    connection = cryptojs_decrypt(on_demand.meta_seen[0]["x-connection-encrypted"], META_KEY)
    assert connection is not None and urlsplit(connection).username == project_names("shop").owner

    # Opening it again starts nothing more
    enter(on_demand, admin, "acme", "shop")
    assert list(on_demand.docker.recorded()) == [name]

    # The cap (1 here): another org's admin gets a page saying why, and nothing starts
    refused = open_studio(boss, "globex", "web")
    assert refused.status_code == 503 and "Studio is busy" in refused.text
    assert "the most it runs at once (1)" in refused.text and "minutes unused" in refused.text
    assert list(on_demand.docker.recorded()) == [name]

    # Unused for IDLE_S: the service's loop stops it through the privileged command; nginx then refuses
    pid = int(str(shop["pid"]))
    assert wait_until(lambda: on_demand.docker.recorded() == {}, IDLE_S + 15)
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10)
    assert tls_get(on_demand.https, STUDIO, "/project/default", {"Cookie": cookie})[0] == 403

    # Its place is free for the next project
    web_cookie = enter(on_demand, boss, "globex", "web", free_within_s=15)
    status, _, body = tls_get(on_demand.https, STUDIO, "/", {"Cookie": web_cookie})
    assert status == 200 and json.loads(body)["project"] == "web"
    assert list(on_demand.docker.recorded()) == [container_name("web")]
    assert tls_get(on_demand.https, STUDIO, "/", {"Cookie": cookie})[0] == 403  # shop's cookie never reaches web


def test_a_link_starts_nothing_only_the_form_with_its_token_does(on_demand: OnDemand) -> None:
    """The session cookie is SameSite=Lax: another site's link (a top-level GET) carries it, so a GET only goes to
    the project page; the POST needs the session's CSRF token and this site's Origin."""
    admin = signed_in_client(on_demand.dash.url, "admin@acme.test")
    before = on_demand.docker.recorded()
    linked = admin.get("/studio/open/acme/shop", headers={"Referer": "https://evil.test/"})
    assert linked.status_code == 303 and linked.headers["location"] == "/orgs/acme/projects/shop"
    assert admin.post("/studio/open/acme/shop", data={"go": "1"}).status_code == 403  # no token
    assert admin.post("/studio/open/acme/shop", data={"csrf": "0" * 64}).status_code == 403
    token = csrf_of(admin.get("/tokens").text)
    foreign = admin.post("/studio/open/acme/shop", data={"csrf": token}, headers={"Origin": "https://evil.test"})
    assert foreign.status_code == 403
    assert on_demand.docker.recorded() == before
    # The project page's CSP lets its form's answer go on to the Studio name (browsers check the redirect too)
    policy = admin.get("/orgs/acme/projects/shop").headers["content-security-policy"]
    assert policy.endswith(f"form-action 'self' https://{STUDIO}:{on_demand.https}")


def test_at_the_cap_an_org_makes_room_from_its_own_studios_never_another_orgs(on_demand: OnDemand) -> None:
    admin = signed_in_client(on_demand.dash.url, "admin@acme.test")
    boss = signed_in_client(on_demand.dash.url, "boss@globex.test")
    web_cookie = enter(on_demand, boss, "globex", "web", free_within_s=IDLE_S + 15)  # the earlier ones idle out

    # The cap (1) is globex's Studio: acme's admin is refused, globex's Studio keeps running
    refused = open_studio(admin, "acme", "shop")
    assert refused.status_code == 503 and "Studio is busy" in refused.text
    assert list(on_demand.docker.recorded()) == [container_name("web")]
    assert tls_get(on_demand.https, STUDIO, "/", {"Cookie": web_cookie})[0] == 200

    # acme's admin holds the place with shop: opening crm stops shop (acme's own, least recently used) first
    shop_cookie = enter(on_demand, admin, "acme", "shop", free_within_s=IDLE_S + 15)
    shop_pid = int(str(on_demand.docker.recorded()[container_name("shop")]["pid"]))
    crm_cookie = enter(on_demand, admin, "acme", "crm")
    assert list(on_demand.docker.recorded()) == [container_name("crm")]
    assert wait_until(lambda: not Path(f"/proc/{shop_pid}").exists(), 10)
    assert tls_get(on_demand.https, STUDIO, "/", {"Cookie": shop_cookie})[0] == 403
    status, _, body = tls_get(on_demand.https, STUDIO, "/", {"Cookie": crm_cookie})
    assert status == 200 and json.loads(body)["project"] == "crm"

    # ...and globex's admin still cannot take acme's place
    assert open_studio(boss, "globex", "web").status_code == 503
    assert list(on_demand.docker.recorded()) == [container_name("crm")]


def run_command_line(on_demand: OnDemand, *words: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tests.support.studiodocker", str(on_demand.folder), *words]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60, check=False)  # noqa: S603


@pytest.mark.parametrize(
    "words",
    [
        ("studio", "start", "nosuch"),  # no such project
        ("studio", "start", "../shop"),  # not a ref
        ("studio", "start", "Shop"),
    ],
)
def test_the_command_starts_nothing_for_a_project_that_is_not_applied_and_active(
    on_demand: OnDemand, words: tuple[str, ...]
) -> None:
    before = on_demand.docker.recorded()
    done = run_command_line(on_demand, *words)
    assert done.returncode == 1 and done.stdout == ""
    assert on_demand.docker.recorded() == before


@pytest.mark.parametrize("words", [("studio",), ("studio", "start"), ("studio", "list", "shop"), ("apply",)])
def test_the_command_refuses_other_shapes(on_demand: OnDemand, words: tuple[str, ...]) -> None:
    assert run_command_line(on_demand, *words).returncode == 64


def test_a_suspended_project_gets_no_studio(on_demand: OnDemand) -> None:
    on_demand.dash.sql("UPDATE projects SET state = 'suspended' WHERE ref = 'crm'")
    try:
        done = run_command_line(on_demand, "studio", "start", "crm")
        assert done.returncode == 1 and "not applied and active" in done.stderr
    finally:
        on_demand.dash.sql("UPDATE projects SET state = 'active' WHERE ref = 'crm'")


def test_a_suspended_projects_studio_stops_when_idle_while_its_page_still_asks(on_demand: OnDemand) -> None:
    """Studio's page keeps asking after its project is suspended: nginx is refused each time, and those refused
    requests do not keep the container from idling out."""
    admin = signed_in_client(on_demand.dash.url, "admin@acme.test")
    cookie = enter(on_demand, admin, "acme", "crm", free_within_s=IDLE_S + 15)
    assert tls_get(on_demand.https, STUDIO, "/", {"Cookie": cookie})[0] == 200
    on_demand.dash.sql("UPDATE projects SET state = 'suspended' WHERE ref = 'crm'")
    try:
        deadline, statuses = time.monotonic() + IDLE_S + 15, set()
        while container_name("crm") in on_demand.docker.recorded() and time.monotonic() < deadline:
            statuses.add(tls_get(on_demand.https, STUDIO, "/", {"Cookie": cookie})[0])
            time.sleep(0.1)
        assert container_name("crm") not in on_demand.docker.recorded()
        assert 403 in statuses
    finally:
        on_demand.dash.sql("UPDATE projects SET state = 'active' WHERE ref = 'crm'")


def test_the_docker_stand_in_refuses_what_the_engine_refuses(tmp_path: Path) -> None:
    docker = StandinStudioDocker(tmp_path, (IMAGE,), (NETWORK,))
    keys = StudioKeys(b"\x07" * 32)
    host = StudioHost(IMAGE, 256, NETWORK, "http://127.0.0.1:9")
    spec = studio_spec(host, keys, "shop")
    try:
        docker.run(spec)
        with pytest.raises(RuntimeError, match="already in use"):
            docker.run(spec)
        for bad, message in (
            (RunSpec(**{**spec.__dict__, "name": "a", "image": "supabase/studio:latest"}), "No such image"),
            (RunSpec(**{**spec.__dict__, "name": "b", "network": "bridge2"}), "not found"),
            (RunSpec(**{**spec.__dict__, "name": "c", "memory_mb": 4}), "Minimum memory"),
            (RunSpec(**{**spec.__dict__, "name": "nm-studio-../shop"}), "Invalid container name"),
            (RunSpec(**{**spec.__dict__, "name": "d"}), "Invalid container name"),  # two characters at least
        ):
            with pytest.raises(RuntimeError, match=message):
                docker.run(bad)
        with pytest.raises(RuntimeError, match="No such container"):
            docker.host_port("nm-studio-nosuch", 3000)
        assert set(docker.labelled(LABEL_STUDIO)) == {container_name("shop")}
    finally:
        docker.close()
    assert docker.labelled(LABEL_STUDIO) == {}
