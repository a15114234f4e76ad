"""A real platform service on a real cluster (the platform tests' harness), and MCP servers started as real
subprocesses that the SDK's own stdio client speaks to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.platform.harness import (
    PlatformStage,
    captured_logs,
    evolution_standin,
    fake_docker,
    running_service,
    service_settings,
    write_manifests,
)
from tests.support.engine import Stage
from tests.support.repo import REPO
from tests.support.scratch import cloned_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def platform_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with cloned_server(pg_template, "nextmavens-mcp-") as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        with (
            fake_docker(base / "fake-docker"),
            evolution_standin(base / "evolution") as (evolution, evolution_settings),
            captured_logs() as logs,
            running_service(service_settings(stage, **evolution_settings)) as url,
        ):
            yield PlatformStage(stage, url, logs, evolution=evolution, evolution_settings=evolution_settings)


def server_env(url: str, token: str, config_dir: Path) -> dict[str, str]:
    """What the MCP client passes the server: the login pair and an empty config folder (never the developer's)."""
    return {
        "NEXTMAVENS_URL": url,
        "NEXTMAVENS_TOKEN": token,
        "NEXTMAVENS_CONFIG_DIR": str(config_dir),
        "PYTHONPATH": str(REPO),
        "PATH": os.environ["PATH"],
    }


def server_argv(*args: str) -> list[str]:
    """`nextmavens mcp ...` through the installed entry point's function, with this interpreter."""
    return ["-c", "import sys; from nextmavens.entry import main; sys.argv[0] = 'nextmavens'; main()", "mcp", *args]


PYTHON = sys.executable
