"""Extensions a manifest may ask for but this server cannot install (D7: `vector` and `pgjwt` exist in the pinned
supabase/postgres, not in Debian's PostgreSQL nor the sandbox's image): a clean error naming the file and the
extension at plan and apply, and nothing applied. Where the server has the extension, it is simply created."""

from __future__ import annotations

import pytest

from nextmavens.engine.plan import PlanError
from nextmavens.manifest.models import ALLOWED_EXTENSIONS
from nextmavens.naming import project_names
from tests.support.engine import Stage
from tests.support.projects import write_project

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("extension", ["vector", "pgjwt"])
def test_allowed_but_missing_extension_is_a_clean_error(stage: Stage, extension: str) -> None:
    assert extension in ALLOWED_EXTENSIONS
    path = write_project(stage.projects, "acme", "vec", database={"extensions": ["pgcrypto", extension]})
    available = stage.sql("SELECT 1 FROM pg_available_extensions WHERE name = %s", (extension,))
    database = project_names("vec").database
    if available:  # a server with the extension installed: it is created like any other
        stage.apply()
        assert stage.sql("SELECT 1 FROM pg_extension WHERE extname = %s", (extension,), dbname=database)
        return
    plan = stage.plan()
    shown = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"  # relative to the projects folder's parent
    assert plan.errors == (f"{shown}: extension(s) {extension} are not installed on this PostgreSQL server",)
    with pytest.raises(PlanError, match=f"extension\\(s\\) {extension} are not installed"):
        stage.apply()
    assert not stage.sql("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    result = stage.cli("plan")
    assert result.returncode != 0 and extension in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
