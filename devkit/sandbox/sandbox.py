"""up / down / status: the orchestration over rootfs, network, machine and images."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nextmavens.files import write_atomic
from nextmavens.templates import REPO_ROOT

from . import commands, imagebuild, machine, manifests, network, rootfs
from .config import LOCAL_IMAGES, SandboxConfig
from .util import log

REQUIRED_TOOLS = ("debootstrap", "systemd-nspawn", "tinyproxy", "ip", "ssh", "ssh-keygen", "tar", "cp", "npm")


class SandboxError(RuntimeError):
    pass


@contextlib.contextmanager
def locked(cfg: SandboxConfig) -> Iterator[None]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def load_state(cfg: SandboxConfig) -> dict[str, Any]:
    try:
        return dict(json.loads(cfg.state_file.read_text()))
    except (OSError, ValueError):
        return {}


def save_state(cfg: SandboxConfig, state: dict[str, Any]) -> None:
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cfg.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o644)


def preflight(cfg: SandboxConfig) -> None:
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (debootstrap, network namespaces, systemd-nspawn)")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise SandboxError(
            "missing tools: " + ", ".join(missing) + " (apt-get install --no-install-recommends debootstrap "
            "systemd-container tinyproxy iproute2 openssh-client)"
        )


def is_running(cfg: SandboxConfig, state: dict[str, Any] | None = None) -> bool:
    state = load_state(cfg) if state is None else state
    return network.pid_alive(state.get("nspawn_pid"), "systemd-nspawn") and network.pid_alive(
        state.get("proxy_pid"), "tinyproxy"
    )


@dataclass
class UpResult:
    already_running: bool
    timings: dict[str, float]
    images: dict[str, str]


def up(cfg: SandboxConfig, *, keep_root: bool = False, build_images: bool = True) -> UpResult:
    preflight(cfg)
    timings: dict[str, float] = {}
    t_start = time.monotonic()

    def lap(name: str, t0: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - t0, 1)
        return now

    with locked(cfg):
        state = load_state(cfg)
        # what the deploy publishes (group data `manifest_source`), ready before any deploy runs
        manifests.seed_manifests(REPO_ROOT / "projects", cfg.manifests_dir)
        mirror, security = rootfs.host_mirrors()
        if is_running(cfg, state):
            imgs: dict[str, str] = {}
            if build_images:
                imgs = imagebuild.ensure_images(cfg, _image_inputs(cfg, mirror))
            return UpResult(True, timings, imgs)
        if state or network.netns_exists(cfg):
            log("cleaning up a sandbox that is no longer running")
            _teardown(cfg, state)

        t = time.monotonic()
        pubkey = rootfs.ensure_key(cfg)
        # the image bases (Debian 12 and 13) and postgres-meta's npm tree are made while the guest root is
        with ThreadPoolExecutor(max_workers=1) as pool:
            base_future = pool.submit(_image_inputs, cfg, mirror) if build_images else None
            cache = rootfs.ensure_guest_cache(cfg, mirror)
            t = lap("guest_cache", t)
            base_tars = base_future.result() if base_future is not None else None
        t = lap("base_cache_wait", t)
        strays = network.nspawn_pids_on(cfg.root)
        if strays:
            raise SandboxError(
                f"systemd-nspawn is already running on {cfg.root} (pid {', '.join(map(str, strays))}) "
                "but is not the sandbox this state dir records; stop it before `sandbox up`"
            )
        trash: Path | None = None
        if keep_root and (cfg.root / "etc/os-release").exists() and cfg.known_hosts.exists():
            log(f"reusing the working root {cfg.root}")
        else:
            trash = rootfs.make_working_root(cfg, cache, mirror, security, pubkey)
        t = lap("working_root", t)
        cleaner = threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True) if trash else None
        if cleaner:
            cleaner.start()

        state = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            network.up(cfg)
            state["netns"] = cfg.netns
            save_state(cfg, state)
            state["proxy_pid"] = network.start_proxy(cfg, [mirror, security])
            save_state(cfg, state)
            state["nspawn_pid"] = machine.boot(cfg)
            save_state(cfg, state)
            _wait_proxy(cfg, state["proxy_pid"])
            state["systemd_state"] = machine.wait_ready(cfg, state["nspawn_pid"])
            t = lap("boot", t)
            imgs = {}
            if build_images and base_tars is not None:
                imgs = imagebuild.ensure_images(cfg, base_tars)
                t = lap("images", t)
        except BaseException:
            log("sandbox up failed; tearing down what was started (the caches stay)")
            _teardown(cfg, state)
            raise
        if cleaner:
            cleaner.join()
        state.update(
            {
                "host_ip": cfg.host_ip,
                "guest_ip": cfg.guest_ip,
                "ssh_port": cfg.ssh_port,
                "root": str(cfg.root),
            }
        )
        save_state(cfg, state)
        timings["total"] = round(time.monotonic() - t_start, 1)
        return UpResult(False, timings, imgs)


def _image_inputs(cfg: SandboxConfig, mirror: str) -> dict[str, Path]:
    """What the image builds need from the host: the base tarballs (returned) and the npm tree (cached)."""
    base_tars = rootfs.ensure_base_tars(cfg, mirror)
    for name in LOCAL_IMAGES:
        imagebuild.host_inputs(cfg, name)
    return base_tars


def _wait_proxy(cfg: SandboxConfig, pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        alive = network.pid_alive(pid, "tinyproxy")
        if alive and network.proxy_listening(cfg):
            time.sleep(0.3)  # a tinyproxy that failed to bind exits right away: make sure ours stays
            if network.pid_alive(pid, "tinyproxy"):
                return
        if not alive or time.monotonic() > deadline:
            errlog = cfg.run_dir / "tinyproxy.stderr"
            raise SandboxError(f"tinyproxy did not start on {cfg.proxy_url} (port taken?); see {errlog}")
        time.sleep(0.1)


def _teardown(cfg: SandboxConfig, state: dict[str, Any]) -> None:
    # only the processes this tool started, by the pids it recorded (pid_alive checks the program name)
    nspawn_pid = state.get("nspawn_pid")
    if nspawn_pid:
        machine.stop(int(nspawn_pid))
    machine.stop_process(state.get("proxy_pid"), "tinyproxy")
    network.down(cfg)
    with contextlib.suppress(FileNotFoundError):
        cfg.state_file.unlink()


def down(cfg: SandboxConfig, *, purge: bool = False) -> bool:
    """Stop the guest and remove the namespace, veth and proxy; keep the caches. Returns whether it ran."""
    preflight(cfg)
    with locked(cfg):
        state = load_state(cfg)
        was = is_running(cfg, state)
        _teardown(cfg, state)
        if purge and cfg.machine_dir.exists():
            log(f"removing the working root {cfg.root}")
            shutil.rmtree(cfg.machine_dir)
        return was


def status(cfg: SandboxConfig, *, probe: bool = True) -> dict[str, Any]:
    state = load_state(cfg)
    out: dict[str, Any] = {
        "running": is_running(cfg, state),
        "nspawn_pid": state.get("nspawn_pid"),
        "nspawn_alive": network.pid_alive(state.get("nspawn_pid"), "systemd-nspawn"),
        "proxy_pid": state.get("proxy_pid"),
        "proxy_alive": network.pid_alive(state.get("proxy_pid"), "tinyproxy"),
        "proxy": cfg.proxy_url,
        "netns": cfg.netns if network.netns_exists(cfg) else None,
        "host_ip": cfg.host_ip,
        "guest_ip": cfg.guest_ip,
        "ssh_port": cfg.ssh_port,
        "root": str(cfg.root),
        "started_at": state.get("started_at"),
        "env": commands.env_lines(cfg),
    }
    if probe and out["running"]:
        out["ssh_reachable"] = machine.port_open(cfg.guest_ip, cfg.ssh_port)
        probe_cmd = (
            "systemctl is-system-running; systemctl is-active docker; "
            "docker ps --format '{{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}'"
        )
        proc = machine.ssh(cfg, probe_cmd, check=False, timeout=20) if out["ssh_reachable"] else None
        if proc is not None and proc.returncode in (0, 1, 3):
            lines = proc.stdout.decode().splitlines()
            out["systemd_state"] = lines[0] if lines else None
            out["docker"] = lines[1] if len(lines) > 1 else None
            out["containers"] = [
                dict(zip(("name", "image", "status", "ports"), ln.split("\t"), strict=False)) for ln in lines[2:]
            ]
            out["local_images"] = {ref: imagebuild.image_exists(cfg, ref) for ref in LOCAL_IMAGES.values()}
        else:
            out["ssh_error"] = "root login by key failed" if proc is not None else "port closed"
    return out


def cache_paths(cfg: SandboxConfig) -> list[Path]:
    return sorted(cfg.cache_dir.glob("*")) if cfg.cache_dir.exists() else []
