"""A stand-in for the docker engine the release flow drives (nextmavens.apps.dockerops.DockerPort), for tests on a
machine without Docker: an "image" is a copy of the build context, a "container" is a local HTTP server process
on a free loopback port. It refuses what the engine refuses where the flow could trip on it: a second container
of the same name, an unknown image, container or network, starting a running container. Like a host, it starts
with the platform's shared network (`nextmavens`) and its members, so a test can see where an app's container
sits. The app it serves is described by `app.json` in the source: {"version": ..., "healthy": true|false,
"exit": false}.

The real engine is exercised by the sandbox e2e tests (tests/e2e/test_sandbox_apps.py).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nextmavens.apps.dockerops import ReleaseContainer, RunSpec, run_kwargs
from nextmavens.apps.releases import LABEL_APP, LABEL_COMMIT, LABEL_PREVIEW, LABEL_PROJECT, release_of
from tests.support.localnginx import wait_port
from tests.support.ports import free_port

SERVER = """
import http.server, json, sys
version, healthy = sys.argv[2], sys.argv[3] == "1"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        ok = healthy or self.path != "/health"
        body = json.dumps({"version": version}).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@dataclass
class _Container:
    spec: RunSpec
    labels: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None
    stopped: bool = False  # by `stop` (the engine's "manually stopped": unless-stopped leaves it stopped)


@dataclass
class StandinDocker:
    root: Path
    images: dict[str, tuple[Path, dict[str, str], str]] = field(default_factory=dict)  # tag: (copy, labels, ID)
    containers: dict[str, _Container] = field(default_factory=dict)
    runs: list[RunSpec] = field(default_factory=list)
    # name: (labels, member containers); the platform's shared network and some of its services, as on a host
    networks: dict[str, tuple[dict[str, str], list[str]]] = field(
        default_factory=lambda: {"nextmavens": ({}, ["nextmavens-postgres-meta", "nextmavens-kong", "nm-shop-rest-1"])}
    )

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        if name not in self.networks:
            self.networks[name] = (dict(labels), [])
        elif any(self.networks[name][0].get(k) != v for k, v in labels.items()):
            raise RuntimeError(f"docker network {name!r} exists but is not this project's bridge")

    def remove_network(self, name: str, labels: Mapping[str, str]) -> bool:
        if name not in self.networks:
            return False
        if any(self.networks[name][0].get(k) != v for k, v in labels.items()):
            raise RuntimeError(f"docker network {name!r} does not carry {dict(labels)}: not removed")
        if self.networks[name][1]:
            raise RuntimeError(f"error while removing network: network {name} has active endpoints")
        del self.networks[name]
        return True

    def network_members(self, name: str) -> list[str]:
        if name not in self.networks:
            raise RuntimeError(f"network {name} not found")
        return list(self.networks[name][1])

    def build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        memory_mb: int,
        on_line: Callable[[str], None],
    ) -> str:
        if not (context / dockerfile).is_file():
            raise RuntimeError(f"Cannot locate specified Dockerfile: {dockerfile}")
        built = {}  # the Dockerfile's own LABELs, then the build's (which win), as the engine merges them
        for line in (context / dockerfile).read_text().splitlines():
            if line.startswith("LABEL "):
                built.update(word.split("=", 1) for word in shlex.split(line[len("LABEL ") :]) if "=" in word)
        built.update(labels)
        copy = Path(tempfile.mkdtemp(dir=self.root))
        shutil.copytree(context, copy, dirs_exist_ok=True)
        on_line(f"Step 1/1 : (stand-in) {dockerfile}")
        image_id = "sha256:" + hashlib.sha256(str(copy).encode()).hexdigest()
        self.images[tag] = (copy, built, image_id)
        return image_id

    def image_config(self, tag: str) -> tuple[str, list[str], list[str], dict[str, str]]:
        _, labels, _ = self._image(tag)
        return "10001", [], ["serve"], dict(labels)

    def run(self, spec: RunSpec) -> None:
        if spec.name in self.containers:
            raise RuntimeError(f"Conflict. The container name {spec.name!r} is already in use")
        _, image_labels, _ = self._image(spec.image)
        if spec.network is not None and spec.network not in self.networks:
            raise RuntimeError(f"network {spec.network} not found")
        self.runs.append(spec)
        if spec.network is not None:
            self.networks[spec.network][1].append(spec.name)
        # The engine's container labels are the image's with the run's on top: an image LABEL shows on the container.
        container = _Container(spec, {**image_labels, **spec.labels})
        self.containers[spec.name] = container
        self._launch(container)

    def _image(self, reference: str) -> tuple[Path, dict[str, str], str]:
        """An image by its tag or its ID, as the engine finds either."""
        for tag, image in self.images.items():
            if reference in (tag, image[2]):
                return image
        raise RuntimeError(f"No such image: {reference}")

    def _launch(self, container: _Container) -> None:
        folder, _, _ = self._image(container.spec.image)
        app = json.loads((folder / "app.json").read_text())
        if app.get("exit"):
            container.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
            container.process.wait()
            return
        port = free_port()
        argv = [sys.executable, "-c", SERVER, str(port), str(app["version"]), "1" if app.get("healthy", True) else "0"]
        container.process = subprocess.Popen(argv)
        container.port = port
        wait_port(port)

    def _get(self, name: str) -> _Container:
        if name not in self.containers:
            raise RuntimeError(f"No such container: {name}")
        return self.containers[name]

    def start(self, name: str) -> None:
        container = self._get(name)
        if self.running(name):
            return
        container.stopped = False
        self._launch(container)

    def reboot(self) -> list[str]:
        """The host restarts: every process ends; the engine then starts the containers its restart policy names
        (the release flow's `unless-stopped`: those not stopped by `stop`), each on a new loopback port. The
        names started again."""
        for container in self.containers.values():
            if container.process is not None and container.process.poll() is None:
                container.process.kill()
                container.process.wait(timeout=10)
            container.port = None
        started = []
        for name, container in self.containers.items():
            policy = run_kwargs(container.spec)["restart_policy"]["Name"]
            if policy == "always" or (policy == "unless-stopped" and not container.stopped):
                self._launch(container)
                started.append(name)
        return started

    def host_port(self, name: str, container_port: int) -> int | None:
        return self._get(name).port if self.running(name) else None

    def running(self, name: str) -> bool:
        process = self._get(name).process
        return process is not None and process.poll() is None

    def logs_tail(self, name: str, lines: int) -> str:
        return f"(stand-in log of {name})"

    def stop(self, name: str, timeout: int) -> None:
        container = self._get(name)
        container.stopped = True
        if container.process is not None and container.process.poll() is None:
            container.process.terminate()
            container.process.wait(timeout=10)
        container.port = None

    def remove(self, name: str) -> None:
        if name in self.containers:
            self.stop(name, 0)
            del self.containers[name]
            for _, members in self.networks.values():
                if name in members:
                    members.remove(name)

    def remove_image(self, tag: str) -> None:
        image_id = self.images[tag][2] if tag in self.images else tag
        if any(c.spec.image in (tag, image_id) for c in self.containers.values()):
            raise RuntimeError(f"conflict: unable to remove {tag}: an existing container uses it")
        self.images.pop(tag, None)

    def releases(self, ref: str, app: str) -> list[ReleaseContainer]:
        return self._labelled(lambda labels: labels.get(LABEL_PROJECT) == ref and labels.get(LABEL_APP) == app)

    def previews(self) -> list[ReleaseContainer]:
        return self._labelled(lambda labels: LABEL_PREVIEW in labels)

    def _labelled(self, wanted: Callable[[Mapping[str, str]], bool]) -> list[ReleaseContainer]:
        found = []
        for name, container in self.containers.items():
            labels = container.labels
            number = release_of(labels)
            if not wanted(labels) or number is None:
                continue
            commit = labels.get(LABEL_COMMIT, "")
            found.append(
                ReleaseContainer(number, name, commit, "", self.running(name), container.spec.image, dict(labels))
            )
        return sorted(found, key=lambda r: r.number)

    def close(self) -> None:
        for name in list(self.containers):
            self.stop(name, 0)
