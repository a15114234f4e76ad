"""Pure builders: argv lists and file contents. Nothing here runs anything, so tests compare exact values."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from .config import SandboxConfig

CGROUP_V1_CONTROLLERS = ("memory", "cpuset", "cpu", "cpuacct", "blkio", "devices", "freezer", "pids")


# debootstrap ---------------------------------------------------------------------------------------------
def debootstrap_argv(suite: str, target: Path, mirror: str, cache: Path, include: tuple[str, ...] = ()) -> list[str]:
    argv = ["debootstrap", "--variant=minbase", f"--cache-dir={cache}"]
    if include:
        argv.append("--include=" + ",".join(include))
    argv += [suite, str(target), mirror]
    return argv


# network -------------------------------------------------------------------------------------------------
def netns_up_argvs(cfg: SandboxConfig) -> list[list[str]]:
    ns = cfg.netns
    # IPv6 off on both ends of the pair: no link-local path around the IPv4 /30
    return [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", cfg.veth_host, "type", "veth", "peer", "name", cfg.veth_guest_tmp],
        ["sysctl", "-q", "-w", f"net.ipv6.conf.{cfg.veth_host}.disable_ipv6=1"],
        ["ip", "link", "set", cfg.veth_guest_tmp, "netns", ns],
        ["ip", "-n", ns, "link", "set", cfg.veth_guest_tmp, "name", cfg.veth_guest],
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{cfg.veth_guest}.disable_ipv6=1"],
        ["ip", "addr", "add", f"{cfg.host_ip}/{cfg.prefixlen}", "dev", cfg.veth_host],
        ["ip", "link", "set", cfg.veth_host, "up"],
        ["ip", "-n", ns, "addr", "add", f"{cfg.guest_ip}/{cfg.prefixlen}", "dev", cfg.veth_guest],
        ["ip", "-n", ns, "link", "set", cfg.veth_guest, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
    ]


def netns_down_argvs(cfg: SandboxConfig) -> list[list[str]]:
    # deleting the namespace destroys the guest end and with it the pair; the host end goes explicitly in
    # case the namespace was already gone
    return [["ip", "link", "del", cfg.veth_host], ["ip", "netns", "del", cfg.netns]]


def mirror_hosts(mirrors: list[str]) -> list[str]:
    hosts: list[str] = []
    for url in mirrors:
        host = urlsplit(url).hostname
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def tinyproxy_conf(cfg: SandboxConfig, filter_path: Path, log_path: Path) -> str:
    return "\n".join(
        [
            "# NextMavens sandbox: forward proxy for the guest, Debian's mirror only",
            "User tinyproxy",
            "Group tinyproxy",
            f"Port {cfg.proxy_port}",
            f"Listen {cfg.host_ip}",
            "Timeout 600",
            "MaxClients 64",
            f'LogFile "{log_path}"',
            "LogLevel Notice",
            # the guest's containers reach the proxy through the guest (Docker masquerades inside the netns)
            f"Allow {cfg.guest_ip}",
            "DisableViaHeader Yes",
            f'Filter "{filter_path}"',
            "FilterType ere",
            "FilterURLs Off",
            "FilterDefaultDeny Yes",
            "ConnectPort 443",
            "",
        ]
    )


def tinyproxy_filter(hosts: list[str]) -> str:
    return "".join(f"^{re.escape(h)}$\n" for h in hosts)


def tinyproxy_argv(conf: Path) -> list[str]:
    return ["tinyproxy", "-d", "-c", str(conf)]


# boot ----------------------------------------------------------------------------------------------------
def nspawn_argv(cfg: SandboxConfig) -> list[str]:
    return [
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={cfg.root}",
        f"--machine={cfg.name}",
        f"--hostname={cfg.hostname}",
        "--capability=all",
        "--system-call-filter=@keyring bpf",
        f"--network-namespace-path=/run/netns/{cfg.netns}",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]


NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "1"}


# ssh -----------------------------------------------------------------------------------------------------
def ssh_argv(cfg: SandboxConfig, user: str = "root", tty: bool = False) -> list[str]:
    argv = [
        "ssh",
        "-i",
        str(cfg.key_path),
        "-p",
        str(cfg.ssh_port),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={cfg.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]
    argv.append("-t" if tty else "-T")
    argv.append(f"{user}@{cfg.guest_ip}")
    return argv


# guest files ---------------------------------------------------------------------------------------------
def guest_sources(suite: str, mirror: str, security_mirror: str) -> str:
    return (
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security_mirror}\nSuites: {suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def apt_proxy_conf(cfg: SandboxConfig) -> str:
    return (
        "// NextMavens sandbox: the guest has no route out; apt goes through the host's proxy\n"
        f'Acquire::http::Proxy "{cfg.proxy_url}/";\n'
        f'Acquire::https::Proxy "{cfg.proxy_url}/";\n'
    )


def cgroup_script() -> str:
    lines = [
        "#!/bin/sh",
        "# nspawn leaves the cgroup v1 controllers read-only; Docker needs them writable.",
        "set -e",
    ]
    for c in CGROUP_V1_CONTROLLERS:
        lines += [
            f"if [ -d /sys/fs/cgroup/{c} ]; then",
            f"  mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}",
            "fi",
        ]
    return "\n".join(lines) + "\n"


CGROUP_UNIT_NAME = "nextmavens-sandbox-cgroups.service"


def cgroup_unit() -> str:
    return (
        "[Unit]\n"
        "Description=NextMavens sandbox: remount cgroup v1 controllers read-write for Docker\n"
        "DefaultDependencies=no\n"
        "After=local-fs.target\n"
        "Before=containerd.service docker.service sysinit.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/usr/local/sbin/nextmavens-sandbox-cgroups\n\n"
        "[Install]\n"
        "WantedBy=sysinit.target\n"
    )


def docker_dropin() -> str:
    return (
        "# NextMavens sandbox: cgroups must be writable before the engine starts\n"
        "[Unit]\n"
        f"Requires={CGROUP_UNIT_NAME}\n"
        f"After={CGROUP_UNIT_NAME}\n"
    )


def sshd_dropin() -> str:
    return (
        "# NextMavens sandbox: root by key only, until the deploy's base task hardens SSH\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    )


def env_lines(cfg: SandboxConfig) -> dict[str, str]:
    return {
        "NEXTMAVENS_SANDBOX_HOST": cfg.guest_ip,
        "NEXTMAVENS_SANDBOX_PORT": str(cfg.ssh_port),
        "NEXTMAVENS_SANDBOX_KEY": str(cfg.key_path),
        "NEXTMAVENS_SANDBOX_USER": "root",
        "NEXTMAVENS_SANDBOX_KNOWN_HOSTS": str(cfg.known_hosts),
        "NEXTMAVENS_SANDBOX_PROXY": cfg.proxy_url,
        "NEXTMAVENS_SANDBOX_MANIFESTS": str(cfg.manifests_dir),
    }
