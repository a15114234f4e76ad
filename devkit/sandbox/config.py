"""Sandbox settings: every knob has a default here, overridable from the environment."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

# Debian 13 for the guest; every package it needs is installed at debootstrap time, so `up` needs no apt
# run inside the guest. docker.io in trixie no longer carries the CLI: that is docker-cli.
SANDBOX_SUITE = "trixie"
SANDBOX_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "python3",
    "ufw",
    "iproute2",
    "iptables",
    "docker.io",
    "docker-cli",
    "docker-compose",
    "ca-certificates",
    "curl",
    "procps",
    "less",
)
# The base images docker-imports inside the guest. Debian 12 carries PostgreSQL 15 and Redis 7, the majors
# the local image names promise (trixie has PostgreSQL 17 and Redis 8); Debian 13 carries Node.js 20, which
# postgres-meta needs (bookworm has 18). Each image's Dockerfile names its base.
IMAGE_BASE_SUITE = "bookworm"
IMAGE_BASE_SUITES = ("bookworm", "trixie")

# Image names the sandbox group data refers to; keep them exactly.
LOCAL_IMAGES = {
    "postgres": "nextmavens-local/postgres:15",
    "redis": "nextmavens-local/redis:7",
    "standin": "nextmavens-local/standin:1",
    "meta": "nextmavens-local/postgres-meta:0.91.6",
    "app": "nextmavens-local/app:1",  # app deployments' base (group data app_deploys)
}


def base_image(suite: str) -> str:
    return f"nextmavens-local/debian:{suite}"


DEFAULT_STATE_DIR = "/var/lib/nextmavens-sandbox"
DEFAULT_SUBNET = "10.213.77.0/30"  # host end .1, guest .2; override with NEXTMAVENS_SANDBOX_SUBNET
DEFAULT_PROXY_PORT = 18888  # not tinyproxy's 8888: a distribution tinyproxy may hold that on all addresses
DEFAULT_NAME = "nmsandbox"  # netns name and veth prefix (interface names stay under 15 characters)
BOOT_TIMEOUT_S = 180


@dataclass(frozen=True)
class SandboxConfig:
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    subnet: str = DEFAULT_SUBNET
    proxy_port: int = DEFAULT_PROXY_PORT
    name: str = DEFAULT_NAME
    hostname: str = "nextmavens-sandbox"
    ssh_port: int = 22
    suite: str = SANDBOX_SUITE
    packages: tuple[str, ...] = field(default=SANDBOX_PACKAGES)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SandboxConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            state_dir=Path(env.get("NEXTMAVENS_SANDBOX_STATE_DIR", DEFAULT_STATE_DIR)),
            subnet=env.get("NEXTMAVENS_SANDBOX_SUBNET", DEFAULT_SUBNET),
            proxy_port=int(env.get("NEXTMAVENS_SANDBOX_PROXY_PORT", str(DEFAULT_PROXY_PORT))),
            name=env.get("NEXTMAVENS_SANDBOX_NAME", DEFAULT_NAME),
        )

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.subnet)
        if net.prefixlen != 30 or not net.is_private:
            raise ValueError(f"sandbox subnet must be a private /30, got {self.subnet}")
        if not self.name.isalnum() or len(self.name) > 12:
            raise ValueError("sandbox name must be alphanumeric and at most 12 characters")
        if not 1 <= self.proxy_port <= 65535:
            raise ValueError(f"proxy port out of range: {self.proxy_port}")

    # addresses ---------------------------------------------------------------------------------------
    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def host_ip(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def guest_ip(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host_ip}:{self.proxy_port}"

    # names -------------------------------------------------------------------------------------------
    @property
    def netns(self) -> str:
        return self.name

    @property
    def veth_host(self) -> str:
        return f"{self.name}h"

    @property
    def veth_guest_tmp(self) -> str:
        return f"{self.name}g"

    veth_guest = "eth0"  # its name inside the namespace

    # paths -------------------------------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def deb_cache(self) -> Path:
        return self.cache_dir / "debs"

    @property
    def npm_cache(self) -> Path:
        return self.cache_dir / "npm"

    @property
    def image_cache(self) -> Path:
        return self.cache_dir / "images"

    @property
    def machine_dir(self) -> Path:
        return self.state_dir / "machine"

    @property
    def root(self) -> Path:
        return self.machine_dir / "root"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def manifests_dir(self) -> Path:
        """The sandbox operator's manifest repository (devkit/sandbox/manifests.py)."""
        return self.state_dir / "manifests"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def key_path(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"
