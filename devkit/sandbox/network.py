"""The guest's network: a namespace, a veth pair with a private /30, and tinyproxy on the host end."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import commands
from .config import SandboxConfig
from .util import log, run


def netns_exists(cfg: SandboxConfig) -> bool:
    return Path(f"/run/netns/{cfg.netns}").exists()


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def check_subnet_free(cfg: SandboxConfig) -> None:
    """Refuse to add addresses that overlap a route this machine already has."""
    out = run(["ip", "-4", "-o", "route", "show", "table", "all"]).stdout.decode()
    import ipaddress

    for line in out.splitlines():
        dest = line.split()[0]
        if dest in ("default", "broadcast", "local", "unreachable", "prohibit", "blackhole"):
            dest = line.split()[1] if dest != "default" else ""
        if not dest or dest.startswith(("multicast",)):
            continue
        try:
            net = ipaddress.IPv4Network(dest, strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0 or net.is_loopback:
            continue
        if net.overlaps(cfg.network) and f"dev {cfg.veth_host}" not in line:
            raise RuntimeError(
                f"sandbox subnet {cfg.subnet} overlaps an existing route ({line.strip()}); "
                "set NEXTMAVENS_SANDBOX_SUBNET to a free private /30"
            )


def up(cfg: SandboxConfig) -> None:
    if netns_exists(cfg) or link_exists(cfg.veth_host):
        log(f"removing a stale namespace or veth named {cfg.netns}")
        down(cfg)
    check_subnet_free(cfg)
    for argv in commands.netns_up_argvs(cfg):
        run(argv)


def down(cfg: SandboxConfig) -> None:
    if link_exists(cfg.veth_host):
        run(["ip", "link", "del", cfg.veth_host], check=False)
    if netns_exists(cfg):
        run(["ip", "netns", "del", cfg.netns], check=False)


def start_proxy(cfg: SandboxConfig, mirrors: list[str]) -> int:
    if shutil.which("tinyproxy") is None:
        raise RuntimeError("tinyproxy is not installed (apt-get install tinyproxy)")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    conf = cfg.run_dir / "tinyproxy.conf"
    flt = cfg.run_dir / "tinyproxy.filter"
    logf = cfg.run_dir / "tinyproxy.log"
    flt.write_text(commands.tinyproxy_filter(commands.mirror_hosts(mirrors)))
    conf.write_text(commands.tinyproxy_conf(cfg, flt, logf))
    logf.touch()
    shutil.chown(logf, "tinyproxy", "tinyproxy")
    out = open(cfg.run_dir / "tinyproxy.stderr", "ab")
    proc = subprocess.Popen(
        commands.tinyproxy_argv(conf),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    log(f"tinyproxy on {cfg.proxy_url} (pid {proc.pid}), allowing {', '.join(commands.mirror_hosts(mirrors))}")
    return proc.pid


def proxy_listening(cfg: SandboxConfig) -> bool:
    import socket

    try:
        with socket.create_connection((cfg.host_ip, cfg.proxy_port), timeout=1):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None, comm: str) -> bool:
    """True when pid runs and is the program we started (guards against pid reuse).

    Reads /proc/PID/exe: the kernel sets it early in execve, while /proc/PID/cmdline reads empty until
    the new program's arguments are in place (a race right after Popen returns). A zombie has no exe.
    """
    if not pid:
        return False
    try:
        exe = os.readlink(f"/proc/{int(pid)}/exe")
    except (OSError, ValueError):
        return False
    return os.path.basename(exe.removesuffix(" (deleted)")) == comm


def nspawn_pids_on(root: Path) -> list[int]:
    """Every systemd-nspawn on this machine booted from `root` (whoever started it)."""
    wanted = f"--directory={root}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"systemd-nspawn" and wanted in argv:
            pids.append(int(proc.name))
    return pids
