"""One applied cluster, the Evolution stand-in and a running service per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Playwright, sync_playwright

from tests.integration.dashboard.harness import DashboardStage, dashboard_stage

MEMBERS = ("owner@acme.test", "admin@acme.test", "dev@acme.test", "boss@globex.test")


@pytest.fixture(scope="module")
def dash(pg_template: Any) -> Iterator[DashboardStage]:
    with dashboard_stage(pg_template, "nextmavens-dash-", signin_lock_after=3, signin_lock_s=600.0) as stage:
        for member in MEMBERS:
            stage.set_password(member)
        yield stage


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running
