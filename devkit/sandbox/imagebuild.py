"""Local images inside the guest: public registries are unreachable, so build from Debian's packages.

Debootstrapped Debian 12 and 13 roots are `docker import`ed as the bases (each Dockerfile's FROM names one);
each directory under ``images/`` is built with the legacy builder (`DOCKER_BUILDKIT=0`; buildx is absent) and
apt through the host's proxy. postgres-meta's npm tree is installed on the host (npm.py) and travels in its
build context. Built images are saved to the host's cache, keyed by their build context, and loaded into a
fresh guest instead of being rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

from nextmavens import upstream

from . import npm
from .config import LOCAL_IMAGES, SandboxConfig, base_image
from .machine import ssh
from .util import log

IMAGES_DIR = Path(__file__).parent / "images"
# Files from the product a build context also needs, at the path it gets inside the context. The stand-in reads
# the pinned upstream facts (what the real programs refuse), so they travel with it and change its context hash.
_UPSTREAM = Path(upstream.__file__).resolve().parent
EXTRA_CONTEXT: dict[str, dict[str, Path]] = {
    "standin": {f"upstream/nextmavens/upstream/{n}": _UPSTREAM / n for n in ("__init__.py", "facts.py", "checks.py")},
}


_FROM = re.compile(r"^FROM\s+nextmavens-local/debian:(\S+)\s*$", re.M)


def base_suite(name: str) -> str:
    """The Debian suite an image builds on, from its Dockerfile's one FROM line."""
    dockerfile = IMAGES_DIR / name / "Dockerfile"
    found = _FROM.findall(dockerfile.read_text())
    if len(found) != 1:
        raise ValueError(f"{dockerfile}: expected one `FROM nextmavens-local/debian:<suite>`, found {found}")
    return str(found[0])


def host_inputs(cfg: SandboxConfig, name: str) -> dict[str, Path]:
    """Files an image's context needs that are made on the host first (postgres-meta's npm tree)."""
    if name == "meta":
        return {npm.BUNDLE_NAME: npm.ensure_bundle(cfg)}
    return {}


def context_tar(name: str, extra: Mapping[str, Path] | None = None) -> bytes:
    """The build context as a reproducible tar (sorted, fixed mtimes and owners)."""
    buf = io.BytesIO()
    src = IMAGES_DIR / name
    if not (src / "Dockerfile").is_file():
        raise FileNotFoundError(f"{src / 'Dockerfile'} is missing (is devkit/sandbox/images packaged?)")
    files = {str(p.relative_to(src)): p for p in src.rglob("*") if p.is_file()}
    files.update(EXTRA_CONTEXT.get(name, {}))
    files.update(extra or {})
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for arcname, path in sorted(files.items()):
            info = tarfile.TarInfo(arcname)
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if path.suffix in (".sh", ".py") else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def context_hash(name: str, base_tar: Path, extra: Mapping[str, Path] | None = None) -> str:
    h = hashlib.sha256(context_tar(name, extra))
    h.update(base_tar.name.encode())
    return h.hexdigest()[:12]


def image_exists(cfg: SandboxConfig, ref: str) -> bool:
    return ssh(cfg, f"docker image inspect {shlex.quote(ref)} >/dev/null 2>&1", check=False).returncode == 0


def image_label(cfg: SandboxConfig, ref: str, label: str) -> str:
    fmt = "{{ index .Config.Labels " + f'"{label}"' + " }}"
    proc = ssh(cfg, f"docker image inspect --format {shlex.quote(fmt)} {shlex.quote(ref)}", check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def ensure_base(cfg: SandboxConfig, suite: str, base_tar: Path) -> None:
    ref = base_image(suite)
    if image_label(cfg, ref, "org.nextmavens.sandbox.base") == base_tar.name:
        return
    log(f"docker import {base_tar.name} as {ref}")
    change = f"LABEL org.nextmavens.sandbox.base={base_tar.name}"
    cmd = shlex.join(["docker", "import", "--change", change, "--change", 'CMD ["/bin/bash"]', "-", ref])
    with open(base_tar, "rb") as f:
        ssh(cfg, cmd, stdin=f, stdout=None)


def ensure_images(cfg: SandboxConfig, base_tars: Mapping[str, Path], rebuild: bool = False) -> dict[str, str]:
    """Make every local image present in the guest; returns {ref: 'present'|'loaded'|'built'}."""
    cfg.image_cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, str] = {}
    bases_ready: set[str] = set()
    for name, ref in LOCAL_IMAGES.items():
        suite = base_suite(name)
        base_tar = base_tars[suite]
        extra = host_inputs(cfg, name)
        digest = context_hash(name, base_tar, extra)
        if not rebuild and image_label(cfg, ref, "org.nextmavens.sandbox.context") == digest:
            result[ref] = "present"
            continue
        cached = cfg.image_cache / f"{name}-{digest}.tar"
        if not rebuild and cached.is_file():
            with open(cached, "rb") as f:
                ssh(cfg, "docker load -q", stdin=f)
            if image_label(cfg, ref, "org.nextmavens.sandbox.context") == digest:
                log(f"loaded {ref} from {cached.name}")
                result[ref] = "loaded"
                continue
        if suite not in bases_ready:
            ensure_base(cfg, suite, base_tar)
            bases_ready.add(suite)
        t0 = time.monotonic()
        log(f"building {ref} inside the guest (apt through {cfg.proxy_url})")
        cmd = shlex.join(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"http_proxy={cfg.proxy_url}",
                "--label",
                f"org.nextmavens.sandbox.context={digest}",
                "-t",
                ref,
                "-",
            ]
        )
        ssh(cfg, f"DOCKER_BUILDKIT=0 {cmd}", input=context_tar(name, extra))
        log(f"built {ref} in {time.monotonic() - t0:.0f}s")
        for old in cfg.image_cache.glob(f"{name}-*.tar"):
            old.unlink()
        partial = cached.with_name(cached.name + ".partial")
        with open(partial, "wb") as f:
            ssh(cfg, f"docker save {shlex.quote(ref)}", stdout=f)
        partial.rename(cached)
        result[ref] = "built"
    return result
