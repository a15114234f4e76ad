"""`nextmavens localdb`: a throwaway local PostgreSQL to try the engine on, before any host exists."""

from __future__ import annotations

from pathlib import Path

import click

from devkit.localdb.server import LocalPostgres

DEFAULT_DIR = ".nextmavens/localdb"


def _server(folder: Path) -> LocalPostgres:
    return LocalPostgres.existing(folder)


@click.group()
def localdb() -> None:
    """Start, stop or describe a local throwaway PostgreSQL (for trying things, not for data you keep)."""


@localdb.command("up")
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=DEFAULT_DIR, show_default=True)
def up(folder: Path) -> None:
    """Start it (creating it on first use) and print the environment to use it."""
    server = _server(folder)
    if server.initialized() and server.running():
        click.echo(f"# already running on 127.0.0.1:{server.port}", err=True)
    else:
        server.port = 0
        try:
            server.start()
        except (RuntimeError, PermissionError) as exc:
            raise click.ClickException(str(exc)) from None
    key = folder.resolve().parent / "master.key"
    click.echo(f"export NEXTMAVENS_DSN='{server.dsn}'")
    click.echo(f"export NEXTMAVENS_MASTER_KEY='{key}'")
    click.echo(f"export NEXTMAVENS_DUMP_DIR='{folder.resolve().parent / 'dumps'}'")


@localdb.command("down")
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=DEFAULT_DIR, show_default=True)
def down(folder: Path) -> None:
    """Stop it (its data folder stays)."""
    _server(folder).stop()
    click.echo("stopped")


@localdb.command("status")
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=DEFAULT_DIR, show_default=True)
def status(folder: Path) -> None:
    server = _server(folder)
    running = server.initialized() and server.running()
    click.echo(f"{'running on 127.0.0.1:' + str(server.port) if running else 'not running'} ({folder})")
