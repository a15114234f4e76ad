"""`sandbox` click group: up, down, ssh, status. Register with ``main.add_command(sandbox)``."""

from __future__ import annotations

import json
import os
import shlex
import sys

import click

from . import commands
from .config import LOCAL_IMAGES, SandboxConfig
from .sandbox import SandboxError, down, status, up
from .util import CommandError


def _cfg() -> SandboxConfig:
    return SandboxConfig.from_env()


def _env_block(cfg: SandboxConfig) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in commands.env_lines(cfg).items())


@click.group(help="A local Debian 13 test host booted with systemd-nspawn (see DESIGN.md section 9).")
def sandbox() -> None:
    pass


@sandbox.command("up", help="Build (cached) and boot the sandbox; print how to reach it and env lines.")
@click.option("--keep-root", is_flag=True, help="Reuse the previous working root instead of a fresh copy.")
@click.option("--no-images", is_flag=True, help="Skip building the local images inside the guest.")
@click.option("--env-only", is_flag=True, help="Print only the export lines on stdout.")
def up_cmd(keep_root: bool, no_images: bool, env_only: bool) -> None:
    cfg = _cfg()
    try:
        result = up(cfg, keep_root=keep_root, build_images=not no_images)
    except (SandboxError, CommandError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    if not env_only:
        if result.already_running:
            click.echo(f"The sandbox is already running at {cfg.guest_ip} (nothing started).", err=True)
        else:
            figures = " ".join(f"{k}={v}s" for k, v in result.timings.items())
            click.echo(f"Sandbox up: {figures}", err=True)
        _print_where(cfg)
        click.echo("# for inventory.py (group `sandbox`):", err=True)
    click.echo(_env_block(cfg))


def _print_where(cfg: SandboxConfig) -> None:
    e = click.echo
    e(f"  guest:   Debian 13 booted by systemd-nspawn, root {cfg.root}", err=True)
    e(f"  ssh:     {shlex.join(commands.ssh_argv(cfg))}   (or: nextmavens sandbox ssh)", err=True)
    e(
        f"  network: netns {cfg.netns}, guest {cfg.guest_ip}/30, host end {cfg.host_ip}; no default route",
        err=True,
    )
    e(f"  proxy:   {cfg.proxy_url} (tinyproxy; Debian's mirror only)", err=True)
    e(
        "  images:  " + ", ".join(LOCAL_IMAGES.values()) + " (built locally; SUBSTITUTES for upstream images)",
        err=True,
    )


@sandbox.command("down", help="Stop the sandbox and remove its namespace, veth and proxy (caches stay).")
@click.option("--purge", is_flag=True, help="Also delete the working root (the debootstrap cache stays).")
def down_cmd(purge: bool) -> None:
    cfg = _cfg()
    try:
        was = down(cfg, purge=purge)
    except (SandboxError, CommandError) as err:
        raise click.ClickException(str(err)) from err
    click.echo("Sandbox stopped." if was else "The sandbox was not running; removed any leftovers.")


@sandbox.command("status", help="What is running and where.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(as_json: bool) -> None:
    cfg = _cfg()
    st = status(cfg)
    if as_json:
        click.echo(json.dumps(st, indent=2, sort_keys=True))
        sys.exit(0 if st["running"] else 3)
    if not st["running"]:
        click.echo("The sandbox is not running (nextmavens sandbox up starts it).")
        if st["netns"] or st["nspawn_alive"] or st["proxy_alive"]:
            click.echo("Leftovers found: run `nextmavens sandbox down` to remove them.")
        sys.exit(3)
    click.echo(f"Sandbox running since {st['started_at']}")
    click.echo(f"  nspawn pid {st['nspawn_pid']}, proxy pid {st['proxy_pid']} ({st['proxy']}), netns {st['netns']}")
    reach = "reachable" if st.get("ssh_reachable") else "NOT reachable"
    click.echo(f"  ssh {st['guest_ip']}:{st['ssh_port']}: {reach}")
    if "systemd_state" in st:
        click.echo(f"  systemd: {st['systemd_state']}; docker: {st['docker']}")
        for ref, ok in st["local_images"].items():
            click.echo(f"  image {ref}: {'present' if ok else 'MISSING'}")
        for c in st["containers"]:
            click.echo(f"  container {c.get('name')} ({c.get('image')}): {c.get('status')} {c.get('ports', '')}")
    elif "ssh_error" in st:
        click.echo(f"  guest probe failed: {st['ssh_error']}")
    click.echo(_env_block(cfg))


@sandbox.command(
    "ssh",
    help="Open a shell in the sandbox, or run COMMAND there.",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--user", default="root", show_default=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(user: str, command: tuple[str, ...]) -> None:
    cfg = _cfg()
    if not cfg.key_path.exists():
        raise click.ClickException("no sandbox key yet: run `nextmavens sandbox up` first")
    tty = not command and sys.stdin.isatty()
    argv = commands.ssh_argv(cfg, user=user, tty=tty)
    if command:
        argv += ["--", shlex.join(command) if len(command) > 1 else command[0]]
    os.execvp(argv[0], argv)


def main() -> None:
    sandbox(prog_name="nextmavens sandbox")


if __name__ == "__main__":
    main()
