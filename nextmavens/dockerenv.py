"""The environment `docker` and `docker compose` run with: only what they need to find the engine.

Compose interpolates `${VAR}` in compose files and unquoted env files from its own environment, and anything
a container is told to inherit comes from there too; the CLI holds NEXTMAVENS_DSN, and a host shell may hold
PGPASSWORD or POSTGRES_PASSWORD. So every docker call the product makes gets this allowlist, never
os.environ: no platform secret is there to be expanded or inherited.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where the CLI finds the engine and its own config; locale for readable messages. Nothing else.
PASSED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "XDG_RUNTIME_DIR",  # rootless docker's socket
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)


def docker_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if source is None else source
    env = {name: environ[name] for name in PASSED if environ.get(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    return env
