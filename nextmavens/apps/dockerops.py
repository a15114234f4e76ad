"""What the release flow asks of Docker, and its one implementation on the docker SDK (docker 7.2.0, pinned in
requirements/host.lock).

The SDK builds with the legacy builder (no BuildKit: no `RUN --mount`, no build secrets); secrets are therefore
never build arguments. A container's port is published on 127.0.0.1 only, on a port Docker picks (`HostPort ''`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nextmavens.apps.releases import LABEL_COMMIT, LABEL_PREVIEW, app_filter, preview_of, release_of

SECRETS_MOUNT = "/run/nextmavens/secrets.env"
# The wrapper a release with secrets starts through: the 0600 file's `NAME='value'` lines become the process's
# environment, then the image's own entrypoint and command run in its place. The values are in no container setting.
SECRETS_LOADER = ("/bin/sh", "-c", f'set -a; . {SECRETS_MOUNT}; set +a; exec "$@"', "nextmavens-app")
# Capabilities a release keeps: none. Every one is dropped and nothing the flow does needs one back:
# - the loader reads the secrets file as its owner (the flow gives the 0600 file to the image's uid, 0 included),
#   so no DAC_OVERRIDE/DAC_READ_SEARCH;
# - nothing in the flow changes user or owner at run time (rendered images already run as uid 10001 by USER; a
#   tenant image that starts as root and drops to another user itself is not supported), so no SETUID/SETGID/CHOWN;
# - a port below 1024 binds without NET_BIND_SERVICE: Docker sets net.ipv4.ip_unprivileged_port_start=0 in a
#   container's own network namespace.
# With no-new-privileges, a setuid binary in the image gains nothing either.
CAP_ADD: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    name: str
    image: str
    container_port: int
    environment: Mapping[str, str]
    labels: Mapping[str, str]
    network: str | None
    memory_mb: int
    pids_limit: int
    secrets_file: Path | None = None  # bound read-only at SECRETS_MOUNT
    entrypoint: Sequence[str] | None = None
    command: Sequence[str] | None = None


@dataclass(frozen=True)
class ReleaseContainer:
    number: int
    name: str
    commit: str
    created: str
    running: bool
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def preview(self) -> str:
        """The preview's name, "" for one of the app's own releases."""
        return preview_of(self.labels)


class DockerPort(Protocol):
    def build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        memory_mb: int,
        on_line: Callable[[str], None],
    ) -> str:
        """The built image's ID (`sha256:...`): the release's container starts from it, not from the tag, which a
        later build could move."""
        ...

    def image_config(self, tag: str) -> tuple[str, list[str], list[str], dict[str, str]]:
        """(user, entrypoint, cmd, labels) of an image."""
        ...

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        """A bridge network `name` carrying `labels`: created when missing; refused when one of that name exists
        without them (it is not this project's)."""
        ...

    def remove_network(self, name: str, labels: Mapping[str, str]) -> bool:
        """Remove network `name` when it carries `labels` (True), nothing when it does not exist (False); refused
        when it exists without them (it is not ours to remove)."""
        ...

    def run(self, spec: RunSpec) -> None: ...

    def start(self, name: str) -> None: ...

    def host_port(self, name: str, container_port: int) -> int | None: ...

    def running(self, name: str) -> bool: ...

    def logs_tail(self, name: str, lines: int) -> str: ...

    def stop(self, name: str, timeout: int) -> None: ...

    def remove(self, name: str) -> None: ...

    def remove_image(self, tag: str) -> None: ...

    def releases(self, ref: str, app: str) -> list[ReleaseContainer]:
        """Every container of the app with a release label (its previews' too), by number."""
        ...

    def previews(self) -> list[ReleaseContainer]:
        """Every preview's container on the host, of any project (memory admission counts them)."""
        ...


class BuildFailed(RuntimeError):
    pass


def run_kwargs(spec: RunSpec) -> dict[str, Any]:
    """The docker SDK's `containers.run` keywords of a release (the image aside). Pure."""
    volumes = {}
    if spec.secrets_file is not None:
        volumes[str(spec.secrets_file)] = {"bind": SECRETS_MOUNT, "mode": "ro"}
    return {
        "name": spec.name,
        "detach": True,
        "environment": dict(spec.environment),
        "labels": dict(spec.labels),
        "ports": {f"{spec.container_port}/tcp": ("127.0.0.1", None)},
        "network": spec.network,
        "mem_limit": f"{spec.memory_mb}m",
        "memswap_limit": f"{spec.memory_mb}m",
        "pids_limit": spec.pids_limit,
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "cap_add": list(CAP_ADD),
        "restart_policy": {"Name": "unless-stopped"},
        "log_config": {"type": "local", "config": {"max-size": "10m", "max-file": "3"}},
        "volumes": volumes,
        "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "command": list(spec.command) if spec.command is not None else None,
    }


class SdkDocker:
    """DockerPort on the docker SDK; `client` is a `docker.DockerClient`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_env(cls) -> SdkDocker:
        import docker

        from nextmavens.dockerenv import docker_environment

        return cls(docker.from_env(environment=docker_environment(), timeout=120))

    def build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        memory_mb: int,
        on_line: Callable[[str], None],
    ) -> str:
        stream = self.client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            labels=dict(labels),
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            container_limits={"memory": memory_mb * 1024 * 1024, "memswap": memory_mb * 1024 * 1024},
        )
        image_id = ""
        for chunk in stream:
            if "error" in chunk:
                raise BuildFailed(str(chunk.get("error", "")).strip())
            aux = chunk.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                image_id = aux["ID"]  # the engine's record of the image this build made
            text = chunk.get("stream")
            if isinstance(text, str):
                for line in text.splitlines():
                    if line.strip():
                        on_line(line)
        if not image_id.startswith("sha256:"):
            raise BuildFailed("the engine reported no image ID for the build")
        return image_id

    def image_config(self, tag: str) -> tuple[str, list[str], list[str], dict[str, str]]:
        config = self.client.images.get(tag).attrs.get("Config") or {}
        labels = {str(key): str(value) for key, value in (config.get("Labels") or {}).items()}
        return (
            str(config.get("User") or ""),
            list(config.get("Entrypoint") or []),
            list(config.get("Cmd") or []),
            labels,
        )

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        import docker.errors

        try:
            network = self.client.networks.get(name)
        except docker.errors.NotFound:
            try:
                self.client.networks.create(name, driver="bridge", labels=dict(labels), check_duplicate=True)
                return
            except docker.errors.APIError:
                network = self.client.networks.get(name)  # another deploy of the project made it meanwhile
        attrs = network.attrs or {}
        found = attrs.get("Labels") or {}
        if attrs.get("Name") != name or attrs.get("Driver") != "bridge" or any(
            found.get(key) != value for key, value in labels.items()
        ):
            raise RuntimeError(f"docker network {name!r} exists but is not this project's bridge ({dict(labels)})")

    def remove_network(self, name: str, labels: Mapping[str, str]) -> bool:
        import docker.errors

        try:
            network = self.client.networks.get(name)
        except docker.errors.NotFound:
            return False
        found = (network.attrs or {}).get("Labels") or {}
        if any(found.get(key) != value for key, value in labels.items()):
            raise RuntimeError(f"docker network {name!r} does not carry {dict(labels)}: not removed")
        network.remove()
        return True

    def run(self, spec: RunSpec) -> None:
        self.client.containers.run(spec.image, **run_kwargs(spec))

    def start(self, name: str) -> None:
        self.client.containers.get(name).start()

    def host_port(self, name: str, container_port: int) -> int | None:
        container = self.client.containers.get(name)
        container.reload()
        bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        for binding in bindings.get(f"{container_port}/tcp") or []:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                return int(binding["HostPort"])
        return None

    def running(self, name: str) -> bool:
        container = self.client.containers.get(name)
        container.reload()
        return bool(container.status == "running")

    def logs_tail(self, name: str, lines: int) -> str:
        raw = self.client.containers.get(name).logs(tail=lines, timestamps=False)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def stop(self, name: str, timeout: int) -> None:
        self.client.containers.get(name).stop(timeout=timeout)

    def remove(self, name: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass

    def remove_image(self, tag: str) -> None:
        import docker.errors

        try:
            self.client.images.remove(tag, noprune=False)
        except docker.errors.ImageNotFound:
            pass

    def labelled(self, label: str) -> dict[str, str]:
        """Running containers carrying `label`: name -> its value (a project's Studio, nextmavens.studiohost)."""
        return {
            str(c.name): str((c.labels or {}).get(label, ""))
            for c in self.client.containers.list(filters={"label": label, "status": "running"})
        }

    def releases(self, ref: str, app: str) -> list[ReleaseContainer]:
        return self._labelled(app_filter(ref, app))

    def previews(self) -> list[ReleaseContainer]:
        return self._labelled({"label": [LABEL_PREVIEW]})

    def _labelled(self, filters: dict[str, list[str]]) -> list[ReleaseContainer]:
        found = []
        for container in self.client.containers.list(all=True, filters=filters):
            labels = container.labels or {}
            number = release_of(labels)
            if number is None:
                continue
            found.append(
                ReleaseContainer(
                    number=number,
                    name=container.name,
                    commit=labels.get(LABEL_COMMIT, ""),
                    created=str(container.attrs.get("Created", ""))[:19],
                    running=container.status == "running",
                    image=str((container.attrs.get("Config") or {}).get("Image", "")),
                    labels=dict(labels),
                )
            )
        return sorted(found, key=lambda r: r.number)
