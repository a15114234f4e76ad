"""The docker SDK side of the release flow (nextmavens.apps.dockerops.SdkDocker) against a recording client: what
it asks the engine for and what it reads back. The real engine runs it in tests/e2e/test_sandbox_apps.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nextmavens.apps.dockerops import BuildFailed, RunSpec, SdkDocker, run_kwargs


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


def test_a_release_runs_with_a_process_limit_no_new_privileges_and_no_capabilities(tmp_path: Path) -> None:
    spec = RunSpec(
        name="nm-app-shop--web-r1",
        image="sha256:" + "cd" * 32,
        container_port=3000,
        environment={"PORT": "3000"},
        labels={"io.nextmavens.project": "shop"},
        network="nextmavens-apps-shop",
        memory_mb=256,
        pids_limit=512,
        secrets_file=tmp_path / "r1.env",
    )
    kwargs = run_kwargs(spec)
    assert kwargs["pids_limit"] == 512
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["cap_add"] == []
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == ("256m", "256m")
    assert kwargs["ports"] == {"3000/tcp": ("127.0.0.1", None)} and kwargs["network"] == "nextmavens-apps-shop"
    assert kwargs["volumes"] == {str(tmp_path / "r1.env"): {"bind": "/run/nextmavens/secrets.env", "mode": "ro"}}
    ran: list[tuple[str, dict[str, Any]]] = []
    client = SimpleNamespace(containers=SimpleNamespace(run=lambda image, **kw: ran.append((image, kw))))
    SdkDocker(client).run(spec)
    assert ran == [(spec.image, kwargs)]


def test_image_config_reads_the_images_labels() -> None:
    attrs = {"Config": {"User": "10001", "Entrypoint": None, "Cmd": ["node"], "Labels": {"io.nextmavens.app": "web"}}}
    client = SimpleNamespace(images=SimpleNamespace(get=lambda ref: SimpleNamespace(attrs=attrs)))
    assert SdkDocker(client).image_config("sha256:x") == ("10001", [], ["node"], {"io.nextmavens.app": "web"})
