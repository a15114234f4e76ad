"""The docker SDK side of the release flow (nextmavens.apps.dockerops.SdkDocker) against a recording client: what
it asks the engine for and what it reads back. The real engine runs it in tests/e2e/test_app_deploys.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nextmavens.apps.dockerops import BuildFailed, SdkDocker


def client_building(chunks: list[dict[str, Any]]) -> Any:
    return SimpleNamespace(api=SimpleNamespace(build=lambda **kwargs: iter(chunks)))


def test_build_returns_the_image_id_the_engine_reported(tmp_path: Path) -> None:
    lines: list[str] = []
    chunks = [{"stream": "Step 1/2 : FROM x\n"}, {"aux": {"ID": "sha256:" + "ab" * 32}}, {"stream": "done\n"}]
    image_id = SdkDocker(client_building(chunks)).build(tmp_path, "Dockerfile", "t:r1", {}, 256, lines.append)
    assert image_id == "sha256:" + "ab" * 32 and lines == ["Step 1/2 : FROM x", "done"]


def test_a_build_without_an_image_id_fails(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="no image ID"):
        SdkDocker(client_building([{"stream": "ok\n"}])).build(tmp_path, "Dockerfile", "t:r1", {}, 256, print)


class Networks:
    """The SDK's `client.networks`, recording what is created."""

    def __init__(self, existing: dict[str, dict[str, Any]]) -> None:
        self.existing = existing
        self.created: list[tuple[str, str, dict[str, str]]] = []

    def get(self, name: str) -> Any:
        import docker.errors

        if name not in self.existing:
            raise docker.errors.NotFound(f"network {name} not found")
        return SimpleNamespace(attrs=self.existing[name])

    def create(self, name: str, driver: str, labels: dict[str, str], check_duplicate: bool) -> None:
        self.created.append((name, driver, labels))
        self.existing[name] = {"Name": name, "Driver": driver, "Labels": labels}


def test_ensure_network_creates_the_projects_bridge_once_and_refuses_a_foreign_one() -> None:
    networks = Networks({"nextmavens-apps-other": {"Name": "nextmavens-apps-other", "Driver": "bridge", "Labels": {}}})
    sdk = SdkDocker(SimpleNamespace(networks=networks))
    labels = {"io.nextmavens.project": "shop"}
    sdk.ensure_network("nextmavens-apps-shop", labels)
    sdk.ensure_network("nextmavens-apps-shop", labels)  # idempotent
    assert networks.created == [("nextmavens-apps-shop", "bridge", labels)]
    with pytest.raises(RuntimeError, match="not this project's bridge"):
        sdk.ensure_network("nextmavens-apps-other", {"io.nextmavens.project": "other"})
