"""The sandbox's pure builders: exact argv lists and file contents, no root and no processes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from devkit.sandbox import commands, imagebuild, rootfs
from devkit.sandbox.config import LOCAL_IMAGES, SandboxConfig


@pytest.fixture
def cfg(tmp_path: Path) -> SandboxConfig:
    return SandboxConfig(state_dir=tmp_path, subnet="10.213.77.0/30", proxy_port=18888, name="nmsandbox")


def test_addresses_and_names(cfg: SandboxConfig) -> None:
    assert (cfg.host_ip, cfg.guest_ip, cfg.prefixlen) == ("10.213.77.1", "10.213.77.2", 30)
    assert cfg.proxy_url == "http://10.213.77.1:18888"
    assert (cfg.netns, cfg.veth_host, cfg.veth_guest_tmp) == ("nmsandbox", "nmsandboxh", "nmsandboxg")
    assert len(cfg.veth_host) <= 15


@pytest.mark.parametrize(
    "kwargs",
    [{"subnet": "10.0.0.0/29"}, {"subnet": "8.8.8.0/30"}, {"name": "bad-name"}, {"name": "waytoolongname1"}],
)
def test_config_rejects(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**kwargs)


def test_config_from_env(tmp_path: Path) -> None:
    cfg = SandboxConfig.from_env(
        {
            "NEXTMAVENS_SANDBOX_STATE_DIR": str(tmp_path),
            "NEXTMAVENS_SANDBOX_SUBNET": "10.9.9.4/30",
            "NEXTMAVENS_SANDBOX_NAME": "nmtest",
            "NEXTMAVENS_SANDBOX_PROXY_PORT": "3999",
        }
    )
    assert (cfg.state_dir, cfg.host_ip, cfg.guest_ip, cfg.netns, cfg.proxy_port) == (
        tmp_path,
        "10.9.9.5",
        "10.9.9.6",
        "nmtest",
        3999,
    )


def test_netns_argvs(cfg: SandboxConfig) -> None:
    assert commands.netns_up_argvs(cfg) == [
        ["ip", "netns", "add", "nmsandbox"],
        ["ip", "link", "add", "nmsandboxh", "type", "veth", "peer", "name", "nmsandboxg"],
        ["sysctl", "-q", "-w", "net.ipv6.conf.nmsandboxh.disable_ipv6=1"],
        ["ip", "link", "set", "nmsandboxg", "netns", "nmsandbox"],
        ["ip", "-n", "nmsandbox", "link", "set", "nmsandboxg", "name", "eth0"],
        ["ip", "netns", "exec", "nmsandbox", "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"],
        ["ip", "addr", "add", "10.213.77.1/30", "dev", "nmsandboxh"],
        ["ip", "link", "set", "nmsandboxh", "up"],
        ["ip", "-n", "nmsandbox", "addr", "add", "10.213.77.2/30", "dev", "eth0"],
        ["ip", "-n", "nmsandbox", "link", "set", "eth0", "up"],
        ["ip", "-n", "nmsandbox", "link", "set", "lo", "up"],
    ]
    # no route is ever added: the guest has no default route
    assert not any("route" in argv for argv in commands.netns_up_argvs(cfg))
    assert commands.netns_down_argvs(cfg) == [
        ["ip", "link", "del", "nmsandboxh"],
        ["ip", "netns", "del", "nmsandbox"],
    ]


def test_tinyproxy_allows_only_the_guest_and_the_mirror(cfg: SandboxConfig) -> None:
    conf = commands.tinyproxy_conf(cfg, Path("/s/filter"), Path("/s/log")).splitlines()
    for line in (
        "Listen 10.213.77.1",
        "Port 18888",
        "Allow 10.213.77.2",
        'Filter "/s/filter"',
        "FilterType ere",
        "FilterDefaultDeny Yes",
        "ConnectPort 443",
    ):
        assert line in conf
    assert [ln for ln in conf if ln.startswith("Allow ")] == ["Allow 10.213.77.2"]
    hosts = commands.mirror_hosts(["http://deb.example.org/debian", "http://deb.example.org/debian-security"])
    assert hosts == ["deb.example.org"]
    assert commands.tinyproxy_filter(hosts) == "^deb\\.example\\.org$\n"


def test_nspawn_argv_has_the_verified_flags(cfg: SandboxConfig) -> None:
    argv = commands.nspawn_argv(cfg)
    for flag in (
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={cfg.root}",
        "--capability=all",
        "--system-call-filter=@keyring bpf",
        "--network-namespace-path=/run/netns/nmsandbox",
        "--resolv-conf=off",
    ):
        assert flag in argv
    assert commands.NSPAWN_ENV == {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "1"}


def test_ssh_argv_pins_the_host_key(cfg: SandboxConfig) -> None:
    argv = commands.ssh_argv(cfg)
    assert argv[:3] == ["ssh", "-i", str(cfg.key_path)]
    assert f"UserKnownHostsFile={cfg.known_hosts}" in argv and "StrictHostKeyChecking=yes" in argv
    assert argv[-1] == "root@10.213.77.2"


def test_cgroup_script_and_units() -> None:
    script = commands.cgroup_script()
    for c in ("memory", "cpuset", "cpu", "cpuacct", "blkio", "devices", "freezer", "pids"):
        assert f"mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}\n" in script
    assert "Before=containerd.service docker.service" in commands.cgroup_unit()
    assert f"Requires={commands.CGROUP_UNIT_NAME}" in commands.docker_dropin()


def test_guest_apt_files(cfg: SandboxConfig) -> None:
    assert commands.apt_proxy_conf(cfg).count("http://10.213.77.1:18888/") == 2
    sources = commands.guest_sources("trixie", "http://m/debian", "http://m/debian-security")
    assert "Suites: trixie trixie-updates" in sources and "Suites: trixie-security" in sources


def test_env_lines(cfg: SandboxConfig) -> None:
    env = commands.env_lines(cfg)
    assert env["NEXTMAVENS_SANDBOX_HOST"] == "10.213.77.2"
    assert env["NEXTMAVENS_SANDBOX_PORT"] == "22"
    assert env["NEXTMAVENS_SANDBOX_KEY"] == str(cfg.key_path)


def test_host_mirrors_deb822_and_list(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    (d / "other.sources").write_text("Types: deb\nURIs: https://elsewhere.test/apt\nSuites: stable\n")
    assert rootfs.host_mirrors(tmp_path) == (
        "http://mirror.test/debian",
        "http://mirror.test/debian-security",
    )

    legacy = tmp_path / "legacy"
    (legacy / "sources.list.d").mkdir(parents=True)
    (legacy / "sources.list").write_text("# comment\ndeb [arch=amd64] http://m.test/debian bookworm main\n")
    assert rootfs.host_mirrors(legacy) == ("http://m.test/debian", "http://m.test/debian-security")

    empty = tmp_path / "empty"
    (empty / "sources.list.d").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        rootfs.host_mirrors(empty)


def test_image_contexts_are_reproducible() -> None:
    assert LOCAL_IMAGES == {
        "postgres": "nextmavens-local/postgres:15",
        "redis": "nextmavens-local/redis:7",
        "standin": "nextmavens-local/standin:1",
        "meta": "nextmavens-local/postgres-meta:0.91.6",
        "app": "nextmavens-local/app:1",
    }
    for name in LOCAL_IMAGES:
        first, second = imagebuild.context_tar(name), imagebuild.context_tar(name)
        assert first == second
        with tarfile.open(fileobj=io.BytesIO(first)) as tar:
            names = tar.getnames()
        assert "Dockerfile" in names
        dockerfile = (imagebuild.IMAGES_DIR / name / "Dockerfile").read_text()
        froms = [ln for ln in dockerfile.splitlines() if ln.startswith("FROM ")]
        # Debian 12 for PostgreSQL 15 and Redis 7; Debian 13 for Node.js 20 (postgres-meta needs >= 20)
        suite = "trixie" if name == "meta" else "bookworm"
        # the image's own FROM last; a build stage (`AS <name>`, only its files copied on) builds on the same base
        assert froms[-1] == f"FROM nextmavens-local/debian:{suite}"
        assert all(ln.startswith(f"FROM nextmavens-local/debian:{suite} AS ") for ln in froms[:-1]), froms
        assert imagebuild.base_suite(name) == suite
