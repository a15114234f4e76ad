"""Boot and stop the guest, and run commands in it over SSH."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from . import commands
from .config import BOOT_TIMEOUT_S, SandboxConfig
from .util import CommandError, log


def boot(cfg: SandboxConfig) -> int:
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    out = open(cfg.run_dir / "nspawn.log", "ab")
    env = dict(os.environ, **commands.NSPAWN_ENV)
    proc = subprocess.Popen(
        commands.nspawn_argv(cfg),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        env=env,
        start_new_session=True,
    )
    log(f"systemd-nspawn booting {cfg.root} (pid {proc.pid}, console log {cfg.run_dir / 'nspawn.log'})")
    return proc.pid


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ssh(
    cfg: SandboxConfig,
    command: str,
    *,
    user: str = "root",
    check: bool = True,
    input: bytes | None = None,
    stdin=None,
    stdout=None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one shell command line in the guest (the caller quotes its parts with shlex)."""
    argv = commands.ssh_argv(cfg, user=user) + ["--", command]
    kwargs: dict = {"timeout": timeout}
    if stdin is not None:
        kwargs["stdin"] = stdin
    else:
        kwargs["input"] = input
    if stdout is not None:
        kwargs["stdout"] = stdout
        kwargs["stderr"] = subprocess.PIPE
    else:
        kwargs["capture_output"] = True
    proc = subprocess.run(argv, **kwargs)
    if check and proc.returncode != 0:
        err = (proc.stderr or b"").decode(errors="replace")
        outp = (proc.stdout or b"").decode(errors="replace") if stdout is None else ""
        tail = "\n".join((outp + err).splitlines()[-30:])
        raise CommandError(f"guest command failed ({proc.returncode}): {command}\n{tail}")
    return proc


def wait_ready(cfg: SandboxConfig, pid: int, timeout: float = BOOT_TIMEOUT_S) -> str:
    """Wait for sshd, then for systemd to finish booting; returns the system state."""
    from .network import pid_alive

    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid, "systemd-nspawn"):
            raise RuntimeError(f"systemd-nspawn exited during boot; see {cfg.run_dir / 'nspawn.log'}")
        if port_open(cfg.guest_ip, cfg.ssh_port):
            if ssh(cfg, "true", check=False, timeout=15).returncode == 0:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"guest sshd not reachable after {timeout:.0f}s; see {cfg.run_dir / 'nspawn.log'}")
        time.sleep(0.5)
    remaining = max(10.0, deadline - time.monotonic())
    proc = ssh(cfg, "systemctl is-system-running --wait", check=False, timeout=remaining)
    state = proc.stdout.decode().strip()
    if state not in ("running", "degraded"):
        raise RuntimeError(f"guest systemd state {state!r}")
    if state == "degraded":
        failed = ssh(cfg, "systemctl --failed --no-legend --plain", check=False).stdout.decode().strip()
        log(f"guest is degraded; failed units:\n{failed}")
    return state


def stop(pid: int, timeout: float = 60) -> None:
    """SIGTERM makes nspawn ask the guest's systemd for an orderly poweroff; SIGKILL after timeout."""
    from .network import pid_alive

    if not pid_alive(pid, "systemd-nspawn"):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid, "systemd-nspawn"):
        if time.monotonic() > deadline:
            log(f"guest did not power off in {timeout:.0f}s; killing nspawn pid {pid}")
            os.kill(pid, signal.SIGKILL)
            time.sleep(1)
            break
        time.sleep(0.3)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_process(pid: int | None, comm: str, timeout: float = 10) -> None:
    from .network import pid_alive

    if not pid or not pid_alive(pid, comm):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid, comm) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid, comm):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
