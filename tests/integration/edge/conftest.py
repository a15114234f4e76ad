"""The edge fixtures of the command-line edge tests: Kong's proxy side an echo server (nginx's routing is
checked), or the Kong proxy stand-in that checks keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edgehost import Edge, local_edge
from tests.support.engine import Stage
from tests.support.localnginx import echo_server
from tests.support.standins import KongProxyStandIn, serve_proxy


@pytest.fixture
def edge(stage: Stage, tmp_path: Path) -> Iterator[Edge]:
    """Kong's proxy side is an echo server: nginx's routing is what is checked."""
    yield from local_edge(tmp_path, lambda kong: echo_server("kong-proxy"))


@pytest.fixture
def gated_edge(stage: Stage, tmp_path: Path) -> Iterator[Edge]:
    """Kong's proxy side checks keys against the config loaded into the Kong stand-in."""
    yield from local_edge(tmp_path, lambda kong: serve_proxy(KongProxyStandIn(kong)))
