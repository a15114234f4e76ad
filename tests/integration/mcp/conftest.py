"""A real platform service on a real cluster (the platform tests' harness), and MCP servers started as real
subprocesses that the SDK's own stdio client speaks to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.platform.harness import PlatformStage, applied_service
from tests.support.repo import REPO


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def platform_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with applied_service(pg_template, "nextmavens-mcp-") as stage:
        yield stage


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
