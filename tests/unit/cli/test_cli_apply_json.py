"""`apply --json` answers an expected failure in JSON too (the platform service's privileged apply parses it):
here an invalid manifest set, refused before any connection."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nextmavens.cli import main
from tests.support.projects import write_raw


def test_an_invalid_set_is_a_json_failure_naming_file_line_and_field(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    write_raw(projects, "acme", "shop.yaml", "ref: shop\nname: Shop\nauth:\n  site_url: 5\n")
    result = CliRunner().invoke(main, ["apply", "--projects", str(projects), "--yes", "--json"])
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["result"] == "failed" and answer["error"]["kind"] == "manifests"
    (problem,) = answer["error"]["problems"]
    assert "acme/shop.yaml:4" in problem and "auth.site_url" in problem


def test_without_json_the_failure_stays_a_message(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    write_raw(projects, "acme", "shop.yaml", "ref: shop\nname: Shop\nauth:\n  site_url: 5\n")
    result = CliRunner().invoke(main, ["apply", "--projects", str(projects), "--yes"])
    assert result.exit_code == 1 and not result.stdout.lstrip().startswith("{")
