"""The debootstrap cache (kept across runs) and the working root the guest boots from."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from . import commands
from .config import IMAGE_BASE_SUITES, SandboxConfig
from .util import log, run

# Trimmed from the docker base tarball: documentation and caches no container needs.
BASE_TAR_EXCLUDES = (
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
    "./var/cache/apt/*",
    "./var/lib/apt/lists/*",
    "./var/log/*",
)


def host_mirrors(sources_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """Debian's mirror and security mirror as this machine's own apt sources name them."""
    main: str | None = None
    security: str | None = None
    files = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for f in files:
        for stanza in f.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            uris = fields.get("uris", "").split()
            suites = fields.get("suites", "").split()
            if not uris or "debian" not in " ".join(uris):
                continue
            if any(s.endswith("-security") for s in suites):
                security = security or uris[0]
            else:
                main = main or uris[0]
    lists = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[0] != "deb":
                continue
            rest = [p for p in parts[1:] if not p.startswith("[")]
            if len(rest) < 2 or "debian" not in rest[0]:
                continue
            if rest[1].endswith("-security") or "/updates" in rest[1]:
                security = security or rest[0]
            else:
                main = main or rest[0]
    if main is None:
        raise RuntimeError("no Debian mirror found in this machine's apt sources")
    if security is None:
        security = main.rstrip("/").rsplit("/", 1)[0] + "/debian-security"
    return main.rstrip("/"), security.rstrip("/")


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def guest_cache_path(cfg: SandboxConfig, mirror: str) -> Path:
    return cfg.cache_dir / f"rootfs-{cfg.suite}-{_key(cfg.suite, mirror, *cfg.packages)}"


def base_tar_path(cfg: SandboxConfig, mirror: str, suite: str) -> Path:
    return cfg.cache_dir / f"base-{suite}-{_key(suite, mirror)}.tar"


def _debootstrap(
    suite: str, target: Path, mirror: str, cfg: SandboxConfig, include: tuple[str, ...], debs_name: str = ""
) -> None:
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    # one package cache per debootstrap kind: the guest's and the image bases' may run at once
    debs = cfg.deb_cache / (debs_name or suite)
    debs.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {suite} into {target} (cached for later runs)")
    run(commands.debootstrap_argv(suite, partial, mirror, debs, include), quiet=True)
    # apt's downloaded lists and archives are not needed in the cache
    for d in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for p in (partial / d).glob("*"):
            if p.is_file() and p.name != "lock":
                p.unlink()
    partial.rename(target)


def ensure_guest_cache(cfg: SandboxConfig, mirror: str) -> Path:
    target = guest_cache_path(cfg, mirror)
    if not target.is_dir():
        _debootstrap(cfg.suite, target, mirror, cfg, cfg.packages)
    return target


def ensure_base_tars(cfg: SandboxConfig, mirror: str) -> dict[str, Path]:
    """The docker base tarball of every suite an image builds on, {suite: path}."""
    return {suite: ensure_base_tar(cfg, mirror, suite) for suite in IMAGE_BASE_SUITES}


def ensure_base_tar(cfg: SandboxConfig, mirror: str, suite: str) -> Path:
    tar = base_tar_path(cfg, mirror, suite)
    if tar.is_file():
        return tar
    tmp_root = cfg.cache_dir / f"base-{suite}-root"
    _debootstrap(suite, tmp_root, mirror, cfg, (), debs_name=f"{suite}-base")
    partial = tar.with_name(tar.name + ".partial")
    argv = ["tar", "-C", str(tmp_root), "--numeric-owner"]
    argv += [f"--exclude={e}" for e in BASE_TAR_EXCLUDES]
    argv += ["-cf", str(partial), "."]
    run(argv)
    partial.rename(tar)
    shutil.rmtree(tmp_root)
    return tar


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    os.chmod(path, mode)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def make_working_root(cfg: SandboxConfig, cache: Path, mirror: str, security: str, pubkey: str) -> Path | None:
    """Copy the cached root and configure it for this sandbox (fresh host keys, network, proxy, cgroups).

    A previous working root is moved aside, not deleted here: returns its path for the caller to delete
    while the guest boots (a converged root holds gigabytes of images and takes a while to remove).
    """
    root = cfg.root
    trash: Path | None = None
    root.parent.mkdir(parents=True, exist_ok=True)
    for old in root.parent.glob("root.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        trash = root.with_name(f"root.old-{secrets.token_hex(4)}")
        root.rename(trash)
    log(f"copying the cached root to {root}")
    run(["cp", "-a", "--reflink=auto", str(cache), str(root)])

    _write(root / "etc/hostname", cfg.hostname + "\n")
    _write(root / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{cfg.hostname}\n::1\tlocalhost ip6-localhost\n")
    _write(root / "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    # no name resolution and no default route: nothing in the guest reaches anything but the proxy
    _write(root / "etc/resolv.conf", "")
    sources = root / "etc/apt/sources.list"
    if sources.exists():
        sources.unlink()
    _write(root / "etc/apt/sources.list.d/debian.sources", commands.guest_sources(cfg.suite, mirror, security))
    _write(root / "etc/apt/apt.conf.d/80nextmavens-sandbox-proxy", commands.apt_proxy_conf(cfg))

    _write(root / "usr/local/sbin/nextmavens-sandbox-cgroups", commands.cgroup_script(), 0o755)
    _write(root / f"etc/systemd/system/{commands.CGROUP_UNIT_NAME}", commands.cgroup_unit())
    _link(
        root / f"etc/systemd/system/sysinit.target.wants/{commands.CGROUP_UNIT_NAME}",
        f"/etc/systemd/system/{commands.CGROUP_UNIT_NAME}",
    )
    for unit in ("docker.service", "containerd.service"):
        _write(root / f"etc/systemd/system/{unit}.d/nextmavens-sandbox.conf", commands.docker_dropin())
    # gettys on a container console only add noise; a container cannot load kernel modules
    for unit in ("console-getty.service", "getty@tty1.service", "systemd-modules-load.service"):
        _link(root / f"etc/systemd/system/{unit}", "/dev/null")

    _write(root / "etc/ssh/sshd_config.d/10-nextmavens-sandbox.conf", commands.sshd_dropin())
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    run(["ssh-keygen", "-q", "-A", "-f", str(root)])
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    _write(ssh_dir / "authorized_keys", pubkey.strip() + "\n", 0o600)

    host_key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    known = f"{cfg.guest_ip} {host_key[0]} {host_key[1]}\n"
    if cfg.ssh_port != 22:
        known = f"[{cfg.guest_ip}]:{cfg.ssh_port} {host_key[0]} {host_key[1]}\n"
    _write(cfg.known_hosts, known, 0o644)
    return trash


def ensure_key(cfg: SandboxConfig) -> str:
    """The sandbox's own SSH key pair (0600), kept across runs; returns the public key."""
    cfg.ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.ssh_dir, 0o700)
    if not cfg.key_path.exists():
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "nextmavens-sandbox",
                "-f",
                str(cfg.key_path),
            ],
            check=True,
        )
    os.chmod(cfg.key_path, 0o600)
    return Path(str(cfg.key_path) + ".pub").read_text()
