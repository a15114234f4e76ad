"""A real platform service for the integration tests: applied manifests on a throwaway PostgreSQL, uvicorn on a
loopback port in a thread of the test process, tokens issued straight into the control database, and every
log line the service writes kept for inspection."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from devkit.standins.postgresmeta import PostgresMetaStandIn
from nextmavens.control.db import connect_control
from nextmavens.platform.issuing import issue_token
from nextmavens.platform.server import server_config
from nextmavens.platform.service import ServiceSettings
from tests.support.engine import Stage
from tests.support.ports import free_port
from tests.support.projects import write_project, write_raw
from tests.support.scratch import cloned_server
from tests.support.standins import EvolutionStandIn, serve

ACME_MEMBERS = {
    "owner@acme.test": "owner",
    "admin@acme.test": "admin",
    "dev@acme.test": "developer",
    "ci@acme.test": "developer",
    "leaver@acme.test": "developer",
}
GLOBEX_MEMBERS = {"boss@globex.test": "owner"}


def org_yaml(name: str, members: dict[str, str]) -> str:
    lines = [f"name: {name}", "members:"]
    lines += [f"  - email: {email}\n    role: {role}" for email, role in members.items()]
    return "\n".join(lines) + "\n"


def write_manifests(projects: Path) -> None:
    write_raw(projects, "acme", "org.yaml", org_yaml("Acme", ACME_MEMBERS))
    write_raw(projects, "globex", "org.yaml", org_yaml("Globex", GLOBEX_MEMBERS))
    write_project(projects, "acme", "shop")
    write_project(projects, "acme", "crm")
    write_project(projects, "globex", "web")


class LogLines(logging.Handler):
    """Every record any logger writes while installed, formatted with its traceback if any."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@contextmanager
def running_service(settings: ServiceSettings) -> Iterator[str]:
    """The service on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(server_config(settings, "127.0.0.1", port, log_config=None, log_level="info"))
    thread = threading.Thread(target=server.run, name="platform-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the platform service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass
class PlatformStage:
    stage: Stage
    url: str
    logs: LogLines
    tokens: dict[str, str] = field(default_factory=dict)  # persona -> token text
    token_ids: dict[str, str] = field(default_factory=dict)
    evolution: EvolutionStandIn | None = None  # the Evolution stand-in the service is given
    evolution_settings: dict[str, object] = field(default_factory=dict)
    meta: PostgresMetaStandIn | None = None  # the postgres-meta stand-in (TypeScript types)

    def settings(self, **overrides: object) -> ServiceSettings:
        return service_settings(self.stage, **{**self.evolution_settings, **overrides})

    def issue(
        self,
        member: str,
        org: str | None = None,
        project: str | None = None,
        read_only: bool = False,
        expires_at: datetime | None = None,
    ) -> tuple[str, str]:
        """(id, token text) of a new token, issued as the operator's CLI does."""
        with connect_control(self.stage.server.dsn) as conn:
            issued = issue_token(
                conn,
                member=member,
                org=org,
                project=project,
                read_only=read_only,
                name="test",
                expires_at=expires_at,
                created_by="tests",
            )
        return issued.record.id, issued.token

    def audit_count(self) -> int:
        return int(self.stage.sql("SELECT count(*) FROM audit_log", dbname="nextmavens")[0][0])


def bearer(stage: PlatformStage, member: str, **scope: Any) -> dict[str, str]:
    """The Authorization header of a new token of `member` (scope as PlatformStage.issue takes it)."""
    return {"Authorization": f"Bearer {stage.issue(member, **scope)[1]}"}


def service_settings(stage: Stage, **overrides: object) -> ServiceSettings:
    values: dict[str, object] = {
        "dsn": stage.server.dsn,
        "master_key": stage.master_key,
        "projects_dir": stage.projects,
        "api_domain": "api.example.test",
        "auth_burst": 100_000,  # the matrix fails authentication on purpose, many times
        "lock_timeout_s": 30.0,
        "manifest_recheck_s": 0.0,  # tests change a manifest and ask at once
        "applied_recheck_s": 0.0,  # ... or apply, and ask at once
        "health_file": stage.projects.parent / "monitor-state" / "health.json",  # none until a test writes it
    }
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


EVOLUTION_KEY = "platform-evolution-key-0123456789abcdef"
PAIRED_NUMBER = "5511987654321"


@contextmanager
def evolution_standin(folder: Path) -> Iterator[tuple[EvolutionStandIn, dict[str, object]]]:
    """The Evolution STAND-IN on loopback holding acme/shop's instance `orders`, paired; yields it and the
    service's settings naming it (its key in a 0600 file under `folder`)."""
    standin = EvolutionStandIn(EVOLUTION_KEY)
    standin.add_instance("shop--orders", "open", ownerJid=f"{PAIRED_NUMBER}@s.whatsapp.net", profileName="Acme Shop")
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "evolution.key"
    key_file.write_text(EVOLUTION_KEY + "\n")
    key_file.chmod(0o600)
    with serve(standin) as url:
        yield standin, {"evolution_url": url, "evolution_key_file": key_file}


META_KEY = "postgres-meta-crypto-key-for-the-tests-0123"


@contextmanager
def postgres_meta_standin(folder: Path, default_dsn: str) -> Iterator[tuple[PostgresMetaStandIn, dict[str, object]]]:
    """The postgres-meta STAND-IN on loopback (its default connection a superuser's, as the real one's); yields it
    and the service's settings naming it (its CRYPTO_KEY in a 0600 file under `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "meta.key"
    key_file.write_text(META_KEY + "\n")
    key_file.chmod(0o600)
    with PostgresMetaStandIn(META_KEY, default_dsn) as meta:
        yield meta, {"postgres_meta_url": meta.base_url, "studio_meta_key_file": key_file}


@contextmanager
def applied_service(pg_template: Any, prefix: str) -> Iterator[PlatformStage]:
    """The test manifests applied on a clone of the template server, and the service running on them with the
    `docker` and Evolution stand-ins (one per test module: applying takes seconds)."""
    with cloned_server(pg_template, prefix) as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        with (
            fake_docker(base / "fake-docker"),
            evolution_standin(base / "evolution") as (evolution, evolution_settings),
            postgres_meta_standin(base / "postgres-meta", server.dsn) as (meta, meta_settings),
            captured_logs() as logs,
            running_service(service_settings(stage, **evolution_settings, **meta_settings)) as url,
        ):
            settings = {**evolution_settings, **meta_settings}
            yield PlatformStage(stage, url, logs, evolution=evolution, evolution_settings=settings, meta=meta)


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout


@contextmanager
def repository_stage(
    pg_template: Any, prefix: str, extra: Callable[[Path], None] | None = None, **overrides: object
) -> Iterator[PlatformStage]:
    """The test manifests (and `extra`'s) committed in a git repository that is the projects folder, applied, and
    the service running on them with `overrides`."""
    with cloned_server(pg_template, prefix) as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        if extra is not None:
            extra(projects)
        git(projects, "init", "-q")
        git(projects, "add", ".")
        git(projects, "-c", "user.name=op", "-c", "user.email=op@example.test", "commit", "-qm", "start")
        applied = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        applied.apply()
        with captured_logs() as logs, running_service(service_settings(applied, **overrides)) as url:
            yield PlatformStage(stage=applied, url=url, logs=logs)


# A stand-in for `docker` (a real executable): records its argv and pid in its folder, prints `count` lines and one
# on stderr; following, it prints a tick every 0.1 s until stopped.
FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$@" > "{folder}/argv"
echo $$ > "{folder}/pid"
count=$(cat "{folder}/count" 2>/dev/null || echo 5)
i=0
while [ "$i" -lt "$count" ]; do echo "2025-01-01T00:00:0${{i}}Z line $i"; i=$((i + 1)); done
echo "an error on stderr" >&2
case " $* " in *" --follow "*) while :; do echo "tick $i"; i=$((i + 1)); sleep 0.1; done ;; esac
exit 0
"""


@contextmanager
def fake_docker(folder: Path, name: str = "docker") -> Iterator[Path]:
    """`name` (the stand-in) first on PATH until the block ends; yields its folder (argv, pid, count files)."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text(FAKE_DOCKER.format(folder=folder))
    program.chmod(0o755)
    before = os.environ["PATH"]
    os.environ["PATH"] = f"{folder}{os.pathsep}{before}"
    try:
        yield folder
    finally:
        os.environ["PATH"] = before


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether process `pid` has ended (within `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
