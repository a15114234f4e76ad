"""`apply --edge-config` renders the edge before it changes the database: a set whose edge config cannot
render is refused with nothing applied (before, the database changed and the edge step died afterwards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.naming import project_names
from tests.support.edgehost import Edge
from tests.support.engine import Stage
from tests.support.projects import write_project


def test_an_edge_config_that_cannot_render_stops_apply_before_any_change(
    stage: Stage,
    edge: Edge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "templates" / "edge"
    broken.mkdir(parents=True)
    (broken / "nginx-edge.conf.j2").write_text("server_name {{ no_such_setting }};\n")
    monkeypatch.setenv("NEXTMAVENS_TEMPLATES", str(broken.parent))
    nginx_before = Path(edge.config.parent / "nginx").glob("**/*.conf")
    before = {p: p.read_text() for p in nginx_before}
    write_project(stage.projects, "acme", "shop", domains=["api.shop.acme.test"])

    result = stage.cli("apply", "--yes", "--edge-config", str(edge.config))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing was applied" in result.stderr and "cannot be rendered" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    names = project_names("shop")
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname = %s", (names.database,)) == []
    assert stage.sql("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(names.login_roles),)) == []
    assert stage.sql("SELECT 1 FROM pg_database WHERE datname LIKE 'nextmavens%%'") == []
    calls = edge.docker_log.read_text().splitlines() if edge.docker_log.exists() else []
    assert all(c.startswith("ps ") for c in calls), calls  # containers were not touched
    assert {p: p.read_text() for p in before} == before
