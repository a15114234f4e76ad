"""An org or project name like `[/x]` goes through plan and apply's rich output as itself (it raised
rich's MarkupError before)."""

from __future__ import annotations

from click.testing import CliRunner

from nextmavens.cli import main
from tests.support.engine import Stage
from tests.support.projects import write_project, write_raw


def test_plan_and_apply_print_markup_like_names_literally(stage: Stage) -> None:
    write_raw(stage.projects, "acme", "org.yaml", 'name: "[/x] Acme [bold]"\n')
    write_project(stage.projects, "acme", "shop", name="[/y] Shop")
    options = ["--projects", str(stage.projects), "--dsn", stage.server.dsn, "--master-key", str(stage.master_key)]
    runner = CliRunner()

    planned = runner.invoke(main, ["plan", *options])
    assert planned.exception is None or isinstance(planned.exception, SystemExit), repr(planned.exception)
    assert planned.exit_code == 2, planned.output
    assert "'[/x] Acme [bold]'" in planned.output, planned.output

    applied = runner.invoke(main, ["apply", "--yes", *options])
    assert applied.exception is None or isinstance(applied.exception, SystemExit), repr(applied.exception)
    assert applied.exit_code == 0, applied.output
    assert "'[/x] Acme [bold]'" in applied.output and "Applied " in applied.output, applied.output
