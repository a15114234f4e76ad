"""The sandbox's stand-in image refuses what the pinned programs refuse (it is a STAND-IN, not Kong or PostgREST).

standin.py runs here as the image runs it: from the image's own build context (devkit/sandbox/imagebuild.py
context_tar, which must ship the facts tables), with the environment the compose gives the container.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devkit.sandbox.imagebuild import context_tar
from nextmavens.edge.kong import PLUGIN_CONFIGS, kong_json, render_kong
from tests.support.edgesamples import sample_projects, settings
from tests.support.ports import free_ports
from tests.support.repo import REPO

pytestmark = pytest.mark.integration

COMPOSE_KONG_PLUGINS = ",".join(sorted(PLUGIN_CONFIGS))  # what the shared compose renders (render.template_context)
SUPABASE_KONG_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction"


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("standin-context")
    with tarfile.open(fileobj=io.BytesIO(context_tar("standin"))) as tar:
        tar.extractall(root, filter="data")
    return root


def _env(context: Path, **values: str) -> dict[str, str]:
    # Only what the container would have: the image's PYTHONPATH and the service's settings.
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(context / "upstream"), "STANDIN_BIND": "127.0.0.1", **values}


@contextmanager
def running(context: Path, **values: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(  # noqa: S603 - our own script, argv list
        [sys.executable, str(context / "standin.py")],
        env=_env(context, **values),
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 15)  # it binds every port, then says so
        line = proc.stderr.readline().decode() if ready else ""
        assert "listening on" in line, f"stand-in did not start: {line!r}"
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _post_config(port: int, text: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/config",
        data=json.dumps({"config": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _kong(context: Path, kong_plugins: str):
    proxy, admin = free_ports(2)
    env = {
        "STANDIN_ROLE": "kong",
        "STANDIN_PORTS": f"{proxy},{admin}",
        "KONG_ADMIN_PORT": str(admin),
        "KONG_PLUGINS": kong_plugins,
    }
    return running(context, **env), admin, proxy


def test_the_image_context_ships_the_facts_the_stand_in_reads(context):
    for name in ("__init__.py", "facts.py", "checks.py"):
        shipped = (context / "upstream/nextmavens/upstream" / name).read_bytes()
        assert shipped == (REPO / "nextmavens/upstream" / name).read_bytes()


def _proxy_status(port: int, host: str, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_kong_stand_in_loads_what_the_project_renders(context):
    server, admin, proxy = _kong(context, COMPOSE_KONG_PLUGINS)
    with server:
        status, _ = _post_config(admin, kong_json(render_kong(settings(), sample_projects())))
        no_key = _proxy_status(proxy, "shop.api.example.test", "/rest/v1/items")
        suspended = _proxy_status(proxy, "helpdesk.api.example.test", "/rest/v1/items")
    assert status == 201
    assert no_key == 401  # the loaded routes are served: key-auth on the project's REST route
    assert suspended == 503  # request-termination on a suspended project's hosts


def test_kong_stand_in_refuses_a_format_version_2_8_1_refuses(context):
    document = render_kong(settings(), sample_projects()).document()
    server, admin, _ = _kong(context, COMPOSE_KONG_PLUGINS)
    with server:
        status, body = _post_config(admin, json.dumps({**document, "_format_version": "3.0"}))
    assert status == 400 and body["code"] == 14
    assert "_format_version: expected one of: 1.1, 2.1" in body["message"]


def test_kong_stand_in_reads_kong_plugins_from_its_environment(context):
    server, admin, _ = _kong(context, SUPABASE_KONG_PLUGINS)  # Supabase's list: no rate-limiting
    with server:
        status, body = _post_config(admin, kong_json(render_kong(settings(), sample_projects())))
    assert status == 400
    assert "plugin 'rate-limiting' not enabled; add it to the 'plugins' configuration property" in body["message"]


def _ready(context: Path, **values: str) -> subprocess.CompletedProcess[str]:
    env = _env(context, PGRST_DB_URI="postgres://authenticator@db:5432/shop", **values)
    return subprocess.run(  # noqa: S603 - our own script, as `postgrest --ready`
        [sys.executable, str(context / "standin.py"), "--ready"], env=env, capture_output=True, text=True, timeout=30
    )


def test_postgrest_stand_in_ready_behaves_as_the_pinned_postgrest(context):
    rest, admin = free_ports(2)
    # Without a usable admin host `postgrest --ready` (v14) fails, as the real one does with the default "!4".
    no_host = _ready(context, PGRST_SERVER_PORT=str(rest), PGRST_ADMIN_SERVER_PORT=str(admin))
    assert no_host.returncode == 1 and '"!4"' in no_host.stderr
    no_admin = _ready(context, PGRST_SERVER_PORT=str(rest))
    assert no_admin.returncode == 1 and "admin-server-port" in no_admin.stderr
    env = {
        "PGRST_DB_URI": "postgres://authenticator@db:5432/shop",
        "PGRST_SERVER_PORT": str(rest),
        "PGRST_ADMIN_SERVER_PORT": str(admin),
        "PGRST_ADMIN_SERVER_HOST": "127.0.0.1",
    }
    down = _ready(context, **{k: v for k, v in env.items() if k != "PGRST_DB_URI"})
    assert down.returncode == 1  # nothing answers /ready yet
    with running(context, **env):
        up = _ready(context, **{k: v for k, v in env.items() if k != "PGRST_DB_URI"})
    assert up.returncode == 0 and f"OK: http://127.0.0.1:{admin}/ready" in up.stdout
