"""Helpers of the release flow's stand-in tests (the `release_stage` fixture is in conftest.py): a source folder the
stand-in docker builds, and a poll for what nginx serves on a name."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nextmavens.apps.dockerops import RunSpec
from nextmavens.apps.release import Context, Target, app_lock
from nextmavens.apps.releases import release_labels
from tests.support.localnginx import http_get
from tests.support.standindocker import StandinDocker

NAME = "web.acme.test"
SECRET = "s3cr3t 'quoted' $HOME `x`"


def source(tmp_path: Path, version: str, healthy: bool = True) -> Path:
    folder = tmp_path / f"src-{version}"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "app.json").write_text(json.dumps({"version": version, "healthy": healthy}))
    return folder


def served(port: int, want: str, host: str = NAME) -> bool:
    """nginx's reload is a signal: workers of the config before may answer a moment longer. Poll (bounded)."""
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        try:
            status, _, body = http_get(port, host)
            seen = (status, body)
            if status == 200 and json.loads(body)["version"] == want:
                return True
        except OSError as exc:
            seen = exc
        time.sleep(0.05)
    raise AssertionError(f"{host} never served {want}: {seen}")


def leave_orphan(docker: StandinDocker, tmp_path: Path, number: int, preview: str | None = None) -> str:
    """What a deploy killed between its container's start and the switch leaves: a labelled, running release of
    acme/shop web. Its container's name."""
    tag = f"nextmavens-app/shop--web:r{number}"
    image = docker.build(source(tmp_path, f"o{number}"), "Dockerfile", tag, {}, 256, lambda line: None)
    labels = release_labels("acme", "shop", "web", "f" * 40, number, preview)
    name = f"nm-app-shop--web-r{number}"
    docker.run(RunSpec(name, image, 3000, {}, labels, None, 256, 64))
    return name


@contextmanager
def lock_held_elsewhere(ctx: Context, target: Target) -> Iterator[None]:
    """The app's deploy lock held by another thread (as by a deploy in progress) for the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with app_lock(ctx, target):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(5)
        yield
    finally:
        release.set()
        thread.join()
