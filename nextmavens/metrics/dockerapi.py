"""The few Docker Engine API calls the collector makes, over the engine's unix socket with the standard library
(the docker SDK would cost the resident collector ~15 MB of memory for two GET requests).

`containers()` lists running containers with the labels compose sets: a project's are compose project
`nm-<ref>` (nextmavens.naming.compose_project_name), its service the compose service (rest, auth, storage).
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


class DockerError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    project: str | None  # the compose project label
    service: str | None  # the compose service label


def container_from(item: dict[str, Any]) -> Container:
    labels = item.get("Labels") or {}
    names = item.get("Names") or [item.get("Id", "?")]
    return Container(
        id=str(item["Id"]),
        name=str(names[0]).lstrip("/"),
        project=labels.get(COMPOSE_PROJECT),
        service=labels.get(COMPOSE_SERVICE),
    )


class DockerApi:
    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def get(self, path: str) -> Any:
        return json.loads(self.get_bytes(path))

    def get_bytes(self, path: str) -> bytes:
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", path, headers={"Host": "docker"})
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise DockerError(f"docker engine at {self.socket_path}: {exc}") from None
        finally:
            conn.close()
        if response.status != 200:
            raise DockerError(f"docker engine answered {response.status} to GET {path}")
        return body

    def containers(self) -> list[Container]:
        return [container_from(item) for item in self.get("/containers/json")]

    def last_lines(self, container_id: str, lines: int = 20) -> list[str]:
        """The container's last log lines (stdout and stderr, with their times)."""
        body = self.get_bytes(f"/containers/{container_id}/logs?stdout=1&stderr=1&timestamps=1&tail={int(lines)}")
        return log_lines(body)

    def stats(self, container_id: str) -> tuple[float, int]:
        """(cumulative CPU seconds, memory bytes) from the stats endpoint: the fallback where no cgroup file is
        readable."""
        stats = self.get(f"/containers/{container_id}/stats?stream=false&one-shot=true")
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
        memory = (stats.get("memory_stats") or {}).get("usage") or 0
        return int(cpu) / 1e9, int(memory)


def log_lines(body: bytes) -> list[str]:
    """The engine's log answer as text lines: without a TTY it is multiplexed, each frame an 8-byte header
    (stream, 0, 0, 0, big-endian length) and its bytes; with one, plain text."""
    text = bytearray()
    position = 0
    multiplexed = len(body) >= 8 and body[0] in (0, 1, 2) and body[1:4] == b"\0\0\0"
    if not multiplexed:
        text += body
    while multiplexed and position + 8 <= len(body):
        size = int.from_bytes(body[position + 4 : position + 8], "big")
        text += body[position + 8 : position + 8 + size]
        position += 8 + size
    return [line for line in text.decode("utf-8", "replace").splitlines() if line]
