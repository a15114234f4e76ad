"""One applied cluster and one running service per test module (applying takes seconds; tests share it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.platform.harness import PlatformStage, applied_service


@pytest.fixture(scope="module")
def platform_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with applied_service(pg_template, "nextmavens-platform-") as stage:
        yield stage
