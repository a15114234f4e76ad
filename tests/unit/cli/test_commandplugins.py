"""Command groups from the `nextmavens.commands` entry points: a good one joins the command line, a broken one
fails alone with one line when run, and none replaces a product command."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import click
from click.testing import CliRunner

from nextmavens import cli
from nextmavens.commandplugins import GROUP, add_plugin_commands


@click.group()
def hello() -> None:
    """Says hello."""


@hello.command()
def world() -> None:
    click.echo("hello, world")


def product() -> click.Group:
    @click.group()
    def main() -> None:
        pass

    @main.command()
    def plan() -> None:
        click.echo("the product's plan")

    return main


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, GROUP)


def test_a_plugin_group_joins_the_command_line() -> None:
    main = product()
    add_plugin_commands(main, [entry("hello", f"{__name__}:hello")])
    done = CliRunner().invoke(main, ["hello", "world"])
    assert (done.exit_code, done.output) == (0, "hello, world\n")


def test_a_broken_plugin_fails_alone_with_one_line() -> None:
    main = product()
    found = [entry("broken", "no_such_module_anywhere:group"), entry("odd", "os:sep")]
    found.append(entry("hello", f"{__name__}:hello"))
    add_plugin_commands(main, found)
    runner = CliRunner()
    assert runner.invoke(main, ["plan"]).output == "the product's plan\n"
    assert runner.invoke(main, ["hello", "world"]).exit_code == 0
    listed = runner.invoke(main, ["--help"])
    assert listed.exit_code == 0 and "broken" in listed.output and "Unavailable" in listed.output
    refusals = {
        "broken": "from no_such_module_anywhere:group (nextmavens.commands): ModuleNotFoundError: No module named "
        "'no_such_module_anywhere'",
        "odd": "from os:sep (nextmavens.commands): str is not a click command",
    }
    for name, reason in refusals.items():
        done = runner.invoke(main, [name, "up", "--flag"])
        assert done.exit_code == 1
        assert done.output == f"Error: the {name!r} command could not be loaded {reason}\n"


def test_a_plugin_never_replaces_a_product_command() -> None:
    main = product()
    add_plugin_commands(main, [entry("plan", f"{__name__}:hello")])
    assert CliRunner().invoke(main, ["plan"]).output == "the product's plan\n"


def test_a_development_install_has_the_workshop_commands() -> None:
    # scripts/bootstrap installs the workshop's distribution beside the product (README: development install)
    assert {"sandbox", "localdb"} <= set(cli.main.commands)
    for name in ("sandbox", "localdb"):
        assert cli.main.commands[name].callback.__module__ == f"devkit.{name}.cli"
