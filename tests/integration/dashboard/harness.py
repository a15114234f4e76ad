"""The dashboard's test stage: the platform tests' manifests in a git repository (the write path commits), applied
on a throwaway PostgreSQL, the Evolution STAND-IN, and the service on loopback; members' passwords set as an
accepted invite would (argon2id hashes in member_credentials)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from nextmavens.control.db import connect_control
from nextmavens.control.store import members
from nextmavens.platform.passwords import hash_password
from tests.integration.platform.harness import (
    captured_logs,
    evolution_standin,
    git,
    running_service,
    service_settings,
    write_manifests,
)
from tests.support.engine import Stage
from tests.support.scratch import cloned_server
from tests.support.standins import EvolutionStandIn

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class DashboardStage:
    stage: Stage
    url: str
    evolution: EvolutionStandIn

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with connect_control(self.stage.server.dsn) as conn:
            cur = conn.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def set_password(self, member: str, password: str = PASSWORD) -> None:
        with connect_control(self.stage.server.dsn) as conn:
            members.set_password(conn, member, hash_password(password))


@contextmanager
def dashboard_stage(pg_template: Any, prefix: str, **overrides: object) -> Iterator[DashboardStage]:
    with cloned_server(pg_template, prefix) as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        git(projects, "init", "-q")
        git(projects, "add", ".")
        git(projects, "-c", "user.name=op", "-c", "user.email=op@example.test", "commit", "-qm", "start")
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()
        with (
            evolution_standin(base / "evolution") as (evolution, evolution_settings),
            captured_logs(),
            running_service(
                service_settings(stage, **{"cookie_secure": False, **evolution_settings, **overrides})
            ) as url,
        ):
            yield DashboardStage(stage, url, evolution)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found is not None, "the page has no form token"
    return found.group(1)


def signed_in_client(url: str, member: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client holding a session of `member` (signed in through the form, as a browser would)."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    form = client.get("/signin")
    answer = client.post(
        "/signin", data={"email": member, "password": password, "csrf": csrf_of(form.text), "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    return client


def folder_of(stage: DashboardStage) -> Path:
    return stage.stage.projects
