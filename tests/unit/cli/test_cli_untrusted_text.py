"""Tenant text in the CLI's rich output is printed as itself: `[/x]` never raises MarkupError."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from nextmavens.cli import main
from tests.support.projects import write_project, write_raw


def test_a_bad_value_with_markup_in_a_validation_error_is_printed_literally(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    write_raw(projects, "acme", "shop.yaml", 'ref: "[/x]"\nname: Shop\nauth:\n  site_url: "https://[/x]"\n')
    result = CliRunner().invoke(main, ["validate", "--projects", str(projects)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert "'[/x]' must be a lowercase slug" in result.output, result.output


def test_a_bad_value_that_looks_like_style_markup_is_not_swallowed(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    write_raw(projects, "acme", "shop.yaml", 'ref: "[bold]x"\nname: Shop\nauth:\n  site_url: https://x.example\n')
    result = CliRunner().invoke(main, ["validate", "--projects", str(projects)])
    assert result.exit_code == 1
    assert "'[bold]x'" in result.output, result.output


def test_a_valid_name_with_brackets_validates(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    write_project(projects, "acme", "shop", name="[/x] shop [red]")
    result = CliRunner().invoke(main, ["validate", "--projects", str(projects)])
    assert result.exit_code == 0, result.output
