"""A STAND-IN for the Docker engine under `nextmavens studio start|stop|list` (nextmavens.studiohost.StudioDocker), and
for the host's root command around it, so the platform service's Studios on demand run end to end here.

- `StandinStudioDocker(folder)`: a "container" is the Studio stand-in process (the image's stand-in in its Studio
  role, started with the container's environment) on a free loopback port, detached so it outlives the command that
  started it, recorded in `folder/containers.json`. It refuses what the engine refuses: a name already in use, an
  image or network it does not have, a memory limit under Docker's 6 MB minimum, a name outside Docker's pattern, a
  container started without a memory limit (the stand-in insists: a Studio must be capped), and a published port
  asked of a container that does not exist.
- `python -m tests.support.studiodocker FOLDER studio start REF | stop REF | list`: what `nextmavens-privileged
  studio ...` runs on the host (the same argument shapes refused with 64), with the product's own `studio_action`
  and the project's state read from the control database `FOLDER/host.json` names; docker is the stand-in above.

Real Docker runs a Studio on the sandbox only as the stand-in image (Studio itself cannot run here)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nextmavens.apps.dockerops import RunSpec
from nextmavens.studiohost import StudioHost
from tests.support.ports import free_port
from tests.support.standins import STANDIN_FILE, wait_listening

DOCKER_MIN_MEMORY_MB = 6  # the engine: "Minimum memory limit allowed is 6MB"
DOCKER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # the engine's validContainerNamePattern


@dataclass
class StandinStudioDocker:
    folder: Path
    images: tuple[str, ...]
    networks: tuple[str, ...]

    @property
    def _file(self) -> Path:
        return self.folder / "containers.json"

    def _load(self) -> dict[str, dict[str, object]]:
        return json.loads(self._file.read_text()) if self._file.exists() else {}

    def _save(self, containers: dict[str, dict[str, object]]) -> None:
        self._file.write_text(json.dumps(containers))

    def run(self, spec: RunSpec) -> None:
        containers = self._load()
        if spec.name in containers:
            raise RuntimeError(f"Conflict. The container name {spec.name!r} is already in use")
        if spec.image not in self.images:
            raise RuntimeError(f"No such image: {spec.image}")
        if spec.network not in self.networks:
            raise RuntimeError(f"network {spec.network} not found")
        if spec.memory_mb < DOCKER_MIN_MEMORY_MB:
            raise RuntimeError("Minimum memory limit allowed is 6MB")
        if not DOCKER_NAME.fullmatch(spec.name):  # checked when the name is reserved, after the settings and image
            raise RuntimeError(f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        port = free_port()
        env = {
            **os.environ,
            **spec.environment,
            "STANDIN_ROLE": "studio",
            "STANDIN_NAME": spec.name,
            "STANDIN_BIND": "127.0.0.1",
            "STANDIN_PORTS": str(port),
        }
        process = subprocess.Popen(  # noqa: S603 - our own stand-in
            [sys.executable, str(STANDIN_FILE)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a container outlives the `docker run` that started it
        )
        containers[spec.name] = {
            "pid": process.pid,
            "port": port,
            "container_port": spec.container_port,
            "labels": dict(spec.labels),
            "memory_mb": spec.memory_mb,
            "network": spec.network,
            "environment": dict(spec.environment),
        }
        self._save(containers)
        wait_listening(port, process, f"the Studio stand-in {spec.name}")

    def host_port(self, name: str, container_port: int) -> int | None:
        found = self._load().get(name)
        if found is None:
            raise RuntimeError(f"No such container: {name}")
        if found["container_port"] != container_port or not _alive(int(str(found["pid"]))):
            return None
        return int(str(found["port"]))

    def remove(self, name: str) -> None:
        containers = self._load()
        found = containers.pop(name, None)
        if found is not None:
            _end(int(str(found["pid"])))
            self._save(containers)

    def labelled(self, label: str) -> dict[str, str]:
        return {
            name: str(c["labels"][label])  # type: ignore[index]
            for name, c in self._load().items()
            if label in c["labels"] and _alive(int(str(c["pid"])))  # type: ignore[operator]
        }

    def recorded(self) -> dict[str, dict[str, object]]:
        return self._load()

    def close(self) -> None:
        for name in list(self._load()):
            self.remove(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a finished child of this very process is a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _end(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def write_host(folder: Path, host: StudioHost, master_key: Path, dsn: str) -> StandinStudioDocker:
    """The stand-in host's settings (what the edge settings and the wrapper give the real command)."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "image": host.image,
        "memory_mb": host.memory_mb,
        "network": host.network,
        "meta_gate_url": host.meta_gate_url,
        "master_key": str(master_key),
        "dsn": dsn,
    }
    (folder / "host.json").write_text(json.dumps(document))
    return StandinStudioDocker(folder, (host.image,), (host.network,))


def main(argv: list[str]) -> int:
    from nextmavens.control.crypto import load_master_key
    from nextmavens.studiocli import project_active, studio_action
    from nextmavens.studiohost import StudioRefused

    folder, words = Path(argv[0]), argv[1:]
    # the shapes nextmavens-privileged lets through (templates/nextmavens/nextmavens-privileged.j2)
    shaped = words[1:2] in (["start"], ["stop"]) and len(words) == 3 or words[1:] == ["list"]
    if words[:1] != ["studio"] or not shaped:
        print("usage: studio start|stop REF | studio list", file=sys.stderr)
        return 64
    config = json.loads((folder / "host.json").read_text())
    host = StudioHost(config["image"], config["memory_mb"], config["network"], config["meta_gate_url"])
    docker = StandinStudioDocker(folder, (host.image,), (host.network,))
    action, ref = words[1], (words[2] if len(words) == 3 else None)
    try:
        active = action == "start" and ref is not None and project_active(config["dsn"], ref)
        answer = studio_action(action, ref, docker, host, load_master_key(Path(config["master_key"])), active)
    except StudioRefused as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
