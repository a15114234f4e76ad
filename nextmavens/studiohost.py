"""A project's Studio container on the host (README "Studio for a project"): started on demand and stopped when idle
by the platform service, through its one way to root (`nextmavens-privileged studio start|stop REF`, `studio list`),
which runs `nextmavens studio ...` here as root. The service never talks to Docker itself.

One container per project, `nm-studio-<ref>`: the pinned Studio image, its memory limit, no capability, its port
published on 127.0.0.1 only (nginx reaches it there, through the service's answer to `auth_request`), on the Studios'
own network where the meta gate is its postgres-meta. Its environment is `studiogate.studio_env`: the project's
database and a token bound to the ref, never a database password. The command checks the project is applied and
active before anything starts (the service asks with a member's request's ref).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from nextmavens.apps.dockerops import RunSpec
from nextmavens.edge.settings import EdgeSettings
from nextmavens.manifest.models import REF_PATTERN
from nextmavens.platform.studiogate import StudioKeys, studio_env, studio_token

STUDIO_PORT = 3000  # Studio's own HOSTNAME/PORT inside its container
LABEL_STUDIO = "io.nextmavens.studio"  # the ref; how `list` finds them, and nothing else carries it
CONTAINER_PREFIX = "nm-studio-"
PIDS_LIMIT = 256
_REF = re.compile(REF_PATTERN)


class StudioRefused(ValueError):
    """The request names no project a Studio may open; nothing started."""


class StudioDocker(Protocol):
    """What starting and stopping a Studio asks of Docker (apps.dockerops.SdkDocker implements it)."""

    def run(self, spec: RunSpec) -> None: ...

    def host_port(self, name: str, container_port: int) -> int | None: ...

    def remove(self, name: str) -> None: ...

    def labelled(self, label: str) -> dict[str, str]:
        """Running containers carrying `label`: name -> the label's value."""
        ...


@dataclass(frozen=True)
class StudioHost:
    """What a project's Studio is started with, from the edge settings the host's deploy renders."""

    image: str
    memory_mb: int
    network: str
    meta_gate_url: str  # the gate as a container on `network` reaches it


def container_name(ref: str) -> str:
    return f"{CONTAINER_PREFIX}{ref}"


def checked_ref(ref: str) -> str:
    if not _REF.fullmatch(ref):
        raise StudioRefused(f"{ref!r} is not a project ref")
    return ref


def studio_spec(host: StudioHost, keys: StudioKeys, ref: str) -> RunSpec:
    """The container of `ref`'s Studio. Pure."""
    env = studio_env(ref, studio_token(keys.token, ref), keys.studio_crypto, host.meta_gate_url)
    return RunSpec(
        name=container_name(ref),
        image=host.image,
        container_port=STUDIO_PORT,
        environment={**env, "PORT": str(STUDIO_PORT)},
        labels={LABEL_STUDIO: ref},
        network=host.network,
        memory_mb=host.memory_mb,
        pids_limit=PIDS_LIMIT,
    )


def running_studios(docker: StudioDocker) -> dict[str, str]:
    """ref -> 127.0.0.1:port of every running project Studio."""
    found = {}
    for name, ref in docker.labelled(LABEL_STUDIO).items():
        if name != container_name(ref) or not _REF.fullmatch(ref):
            continue  # not one this module started
        port = docker.host_port(name, STUDIO_PORT)
        if port is not None:
            found[ref] = f"127.0.0.1:{port}"
    return found


def start_studio(docker: StudioDocker, host: StudioHost, keys: StudioKeys, ref: str, active: bool) -> str:
    """`ref`'s Studio running (started when it is not): its upstream, 127.0.0.1:port. `active`: the project is
    applied and not suspended (the caller read it from the control database)."""
    checked_ref(ref)
    if not active:
        raise StudioRefused(f"project {ref} is not applied and active")
    running = running_studios(docker)
    if ref in running:
        return running[ref]
    docker.remove(container_name(ref))  # a stopped one of before: started again with today's environment
    docker.run(studio_spec(host, keys, ref))
    port = docker.host_port(container_name(ref), STUDIO_PORT)
    if port is None:
        docker.remove(container_name(ref))
        raise RuntimeError(f"the Studio of {ref} started without a published port")
    return f"127.0.0.1:{port}"


def stop_studio(docker: StudioDocker, ref: str) -> bool:
    """Removes `ref`'s Studio (it keeps nothing: its state is the project's database). True when one ran."""
    checked_ref(ref)
    was = ref in docker.labelled(LABEL_STUDIO).values()
    docker.remove(container_name(ref))
    return was


def studio_host_of(settings: EdgeSettings) -> StudioHost | None:
    """From the edge settings (None when the host renders no Studio for projects)."""
    image, memory = settings.studio_image, settings.project_studio_memory_mb
    network, gate = settings.project_studio_network, settings.studio_meta_gate_url
    if image is None or memory is None or network is None or gate is None:
        return None
    return StudioHost(image, memory, network, gate)
