"""The write path with a privileged prefix, as on the host: the service runs `<prefix> apply --yes --json` and
answers from its JSON. The prefix here is a real program, this interpreter running the real `nextmavens` command
line, which applies on the test PostgreSQL; on the host it is sudo to the root-owned apply unit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from nextmavens.control.locks import APPLY_LOCK_KEY
from tests.integration.platform.harness import PlatformStage, bearer, git, repository_stage

PREFIX = (sys.executable, "-m", "nextmavens.cli")


@pytest.fixture(scope="module")
def stage(pg_template: Any) -> Iterator[PlatformStage]:
    with repository_stage(pg_template, "nextmavens-privileged-", privileged_argv=PREFIX, lock_timeout_s=3.0) as up:
        yield up


@pytest.fixture(autouse=True)
def root_side_environment(stage: PlatformStage, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the host's wrapper exports for the root side; the service itself passes only the actor."""
    monkeypatch.setenv("NEXTMAVENS_DSN", stage.stage.server.dsn)
    monkeypatch.setenv("NEXTMAVENS_PROJECTS", str(stage.stage.projects))
    monkeypatch.setenv("NEXTMAVENS_MASTER_KEY", str(stage.stage.master_key))
    monkeypatch.setenv("NEXTMAVENS_LOCK_TIMEOUT", "3")


@pytest.fixture(scope="module")
def client(stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stage.url, timeout=120) as session:
        yield session


def new_project(ref: str) -> dict[str, str]:
    return {"org": "acme", "ref": ref, "name": f"Project {ref}", "site_url": f"https://{ref}.example"}


def head(stage: PlatformStage) -> str:
    return git(stage.stage.projects, "rev-parse", "HEAD").strip()


def test_a_create_is_applied_by_the_privileged_command(stage: PlatformStage, client: httpx.Client) -> None:
    answer = client.post("/v1/projects", json=new_project("ledger"), headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["commit"] == head(stage)
    assert any(change["project"] == "acme/ledger" for change in body["apply"]["changes"])
    # no edge config on this side: the answer says so, as the in-process apply's does
    assert body["edge_converged"] is False and "database side only" in body["warning"]
    assert stage.stage.sql("SELECT 1 FROM pg_database WHERE datname = 'ledger'")
    # the run is the command line's, a separate process, with the member as its actor
    run = stage.stage.sql("SELECT id, actor, command FROM apply_runs ORDER BY id DESC LIMIT 1", dbname="nextmavens")
    assert run[0][0] == body["apply"]["run"] and run[0][1].startswith("admin@acme.test (platform token ")
    assert stage.stage.plan().empty


def test_a_refused_plan_answers_as_in_process(stage: PlatformStage, client: httpx.Client) -> None:
    stage.stage.sql("CREATE DATABASE claimed")  # not the platform's: the plan refuses to take it over
    before = head(stage)
    answer = client.post("/v1/projects", json=new_project("claimed"), headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "apply_failed", answer.text
    assert "claimed" in answer.json()["error"]["message"]
    assert head(stage) == before and not (stage.stage.projects / "acme" / "claimed.yaml").exists()


def test_a_held_apply_lock_answers_busy(stage: PlatformStage, client: httpx.Client) -> None:
    before = head(stage)
    with psycopg.connect(stage.stage.server.dsn_for("nextmavens"), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        answer = client.post("/v1/projects", json=new_project("waiting"), headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "busy", answer.text
    assert head(stage) == before and not (stage.stage.projects / "acme" / "waiting.yaml").exists()


def test_a_rotation_runs_the_privileged_apply_after_storing_the_keys(
    stage: PlatformStage, client: httpx.Client
) -> None:
    before = stage.stage.sql("SELECT max(id) FROM apply_runs", dbname="nextmavens")[0][0]
    answer = client.post("/v1/projects/acme/shop/keys/rotate", headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 200, answer.text
    # the command line here has no edge config, so the edge is not converged and the answer says so
    assert answer.json()["edge_converged"] is False and answer.json()["warning"]
    commands = stage.stage.sql(
        "SELECT command FROM apply_runs WHERE id > %s ORDER BY id", (before,), dbname="nextmavens"
    )
    assert [row[0] for row in commands][:1] == ["keys rotate"] and len(commands) == 2
