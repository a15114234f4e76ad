"""One applied cluster and one running service per test module (applying takes seconds; tests share it)."""

from __future__ import annotations

from collections.abc import Iterator
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
from tests.support.scratch import cloned_server


@pytest.fixture(scope="module")
def platform_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with cloned_server(pg_template, "nextmavens-platform-") as (server, base):
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
