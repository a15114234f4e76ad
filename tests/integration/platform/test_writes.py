"""The write path end to end: a real server on loopback, a real PostgreSQL, and a git repository as the projects
folder. Creates and state changes are committed as the member only after the engine applied them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from nextmavens.control.locks import APPLY_LOCK_KEY
from tests.integration.platform.harness import (
    PlatformStage,
    bearer,
    git,
    repository_stage,
    running_service,
    service_settings,
)
from tests.support.projects import write_project


def extra_manifests(projects: Path) -> None:
    write_project(projects, "acme", "gone", state="absent")


@pytest.fixture(scope="module")
def stage(pg_template: Any) -> Iterator[PlatformStage]:
    # A short lock timeout: the test that holds the apply lock waits for it seconds, not half a minute.
    with repository_stage(pg_template, "nextmavens-writes-", extra_manifests, lock_timeout_s=3.0) as running:
        yield running


@pytest.fixture(scope="module")
def client(stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stage.url, timeout=120) as session:
        yield session


def new_project(ref: str, **fields: Any) -> dict[str, Any]:
    return {"org": "acme", "ref": ref, "name": f"Project {ref}", "site_url": f"https://{ref}.example", **fields}


def head(stage: PlatformStage) -> str:
    return git(stage.stage.projects, "rev-parse", "HEAD").strip()


def audit_results(stage: PlatformStage, action: str) -> list[str]:
    rows = stage.stage.sql("SELECT result FROM audit_log WHERE action = %s ORDER BY id", (action,), "nextmavens")
    return [row[0] for row in rows]


def database_exists(stage: PlatformStage, name: str) -> bool:
    return bool(stage.stage.sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def test_create_commits_as_the_member_and_applies(stage: PlatformStage, client: httpx.Client) -> None:
    answer = client.post(
        "/v1/projects",
        json=new_project("billing", redirect_urls=["https://billing.example/cb"]),
        headers=bearer(stage, "admin@acme.test"),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["commit"] == head(stage)
    assert body["project"]["applied_state"] == "active" and body["project"]["declared_state"] == "active"
    assert any(change["project"] == "acme/billing" for change in body["apply"]["changes"])
    assert body["edge_converged"] is False and "database side only" in body["warning"]
    projects = stage.stage.projects
    assert git(projects, "log", "-1", "--format=%an|%ae|%cn|%s") == (
        "admin@acme.test|admin@acme.test|NextMavens platform|Create project acme/billing\n"
    )
    assert git(projects, "show", "--name-only", "--format=", "HEAD").split() == ["acme/billing.yaml"]
    assert git(projects, "status", "--porcelain") == ""
    assert database_exists(stage, "billing")
    assert stage.stage.plan().empty  # a second apply through the engine changes nothing
    assert audit_results(stage, "projects.create")[-1] == "ok"
    again = client.post("/v1/projects", json=new_project("billing"), headers=bearer(stage, "owner@acme.test"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "exists"


def test_invalid_input_answers_the_cli_messages_and_leaves_nothing(stage: PlatformStage, client: httpx.Client) -> None:
    before = head(stage)
    answer = client.post(
        "/v1/projects",
        json=new_project("bad-site", site_url="ftp://nowhere", name="x\u202ey"),
        headers=bearer(stage, "admin@acme.test"),
    )
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert "site_url: must be an http(s) URL with a host name" in message
    assert "name: must not contain control or invisible characters (found U+202E)" in message
    reserved = client.post("/v1/projects", json=new_project("postgres"), headers=bearer(stage, "admin@acme.test"))
    assert reserved.status_code == 422 and "ref: ref 'postgres' is reserved" in reserved.json()["error"]["message"]
    assert head(stage) == before
    assert not (stage.stage.projects / "acme" / "bad-site.yaml").exists()
    assert audit_results(stage, "projects.create")[-2:] == ["invalid", "invalid"]


def test_a_failed_apply_leaves_no_commit_and_no_file(stage: PlatformStage, client: httpx.Client) -> None:
    stage.stage.sql("CREATE DATABASE squatted")  # not the platform's: the plan refuses to take it over
    before = head(stage)
    answer = client.post("/v1/projects", json=new_project("squatted"), headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "apply_failed", answer.text
    assert "squatted" in answer.json()["error"]["message"]
    assert head(stage) == before
    assert not (stage.stage.projects / "acme" / "squatted.yaml").exists()
    assert git(stage.stage.projects, "status", "--porcelain", "--untracked-files=all") == ""
    assert audit_results(stage, "projects.create")[-1] == "failed"


def test_a_held_apply_lock_leaves_no_commit(stage: PlatformStage, client: httpx.Client) -> None:
    before = head(stage)
    with psycopg.connect(stage.stage.server.dsn_for("nextmavens"), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        answer = client.post("/v1/projects", json=new_project("waiting"), headers=bearer(stage, "admin@acme.test"))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "busy"
    assert head(stage) == before
    assert not (stage.stage.projects / "acme" / "waiting.yaml").exists()
    assert not database_exists(stage, "waiting")


def test_concurrent_creates_land_as_two_commits(stage: PlatformStage, client: httpx.Client) -> None:
    before = head(stage)
    headers = bearer(stage, "admin@acme.test")
    answers: dict[str, int] = {}

    def create(ref: str) -> None:
        with httpx.Client(base_url=stage.url, timeout=120) as own:
            answers[ref] = own.post("/v1/projects", json=new_project(ref), headers=headers).status_code

    threads = [threading.Thread(target=create, args=(ref,)) for ref in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert answers == {"left": 201, "right": 201}
    subjects = git(stage.stage.projects, "log", "--format=%s", f"{before}..HEAD").splitlines()
    assert sorted(subjects) == ["Create project acme/left", "Create project acme/right"]
    assert database_exists(stage, "left") and database_exists(stage, "right")


def test_who_may_create(stage: PlatformStage, client: httpx.Client) -> None:
    before = head(stage)
    developer = client.post("/v1/projects", json=new_project("devs"), headers=bearer(stage, "dev@acme.test"))
    assert developer.status_code == 403
    read_only = client.post(
        "/v1/projects", json=new_project("ro"), headers=bearer(stage, "admin@acme.test", read_only=True)
    )
    assert read_only.status_code == 403
    outsider = client.post("/v1/projects", json=new_project("outside"), headers=bearer(stage, "boss@globex.test"))
    assert outsider.status_code == 404 and outsider.json()["error"]["code"] == "not_found"
    assert head(stage) == before
    assert audit_results(stage, "projects.create")[-3:] == ["forbidden", "forbidden", "not_found"]


def test_suspend_and_resume(stage: PlatformStage, client: httpx.Client) -> None:
    admin = bearer(stage, "admin@acme.test")
    manifest = stage.stage.projects / "acme" / "shop.yaml"
    suspended = client.patch("/v1/projects/acme/shop", json={"state": "suspended"}, headers=admin)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["project"]["applied_state"] == "suspended"
    assert suspended.json()["commit"] == head(stage)
    assert "state: suspended" in manifest.read_text()
    assert git(stage.stage.projects, "log", "-1", "--format=%ae|%s") == "admin@acme.test|Suspend project acme/shop\n"
    unchanged = client.patch("/v1/projects/acme/shop", json={"state": "suspended"}, headers=admin)
    assert unchanged.status_code == 200 and unchanged.json()["commit"] is None and unchanged.json()["apply"] is None
    resumed = client.patch("/v1/projects/acme/shop", json={"state": "active"}, headers=admin)
    assert resumed.status_code == 200 and resumed.json()["project"]["applied_state"] == "active"
    assert git(stage.stage.projects, "log", "-1", "--format=%s") == "Resume project acme/shop\n"
    assert stage.stage.plan().empty
    assert audit_results(stage, "projects.suspend")[-3:] == ["ok", "unchanged", "ok"]
    developer = client.patch(
        "/v1/projects/acme/shop", json={"state": "suspended"}, headers=bearer(stage, "dev@acme.test")
    )
    assert developer.status_code == 403
    outsider = client.patch(
        "/v1/projects/acme/shop", json={"state": "suspended"}, headers=bearer(stage, "boss@globex.test")
    )
    assert outsider.status_code == 404
    missing = client.patch("/v1/projects/acme/nothere", json={"state": "suspended"}, headers=admin)
    assert missing.status_code == 404
    absent = client.patch("/v1/projects/acme/shop", json={"state": "absent"}, headers=admin)
    assert absent.status_code == 422
    orphan = client.patch("/v1/projects/acme/gone", json={"state": "active"}, headers=admin)
    assert orphan.status_code == 409 and orphan.json()["error"]["code"] == "absent"
    assert "state: absent" in (stage.stage.projects / "acme" / "gone.yaml").read_text()


def test_without_a_manifest_repository(stage: PlatformStage, client: httpx.Client) -> None:
    projects = stage.stage.projects
    (projects / ".git").rename(projects.parent / "git-away")
    try:
        answer = client.post("/v1/projects", json=new_project("norepo"), headers=bearer(stage, "admin@acme.test"))
    finally:
        (projects.parent / "git-away").rename(projects / ".git")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_manifest_repository"
    assert "not the root of a git work tree" in answer.json()["error"]["message"]
    assert not (projects / "acme" / "norepo.yaml").exists()


def test_the_writer_reads_its_write_at_once_whatever_the_recheck_times(stage: PlatformStage) -> None:
    held = service_settings(stage.stage, manifest_recheck_s=3600.0, applied_recheck_s=3600.0)
    admin = bearer(stage, "admin@acme.test")
    with running_service(held) as url, httpx.Client(base_url=url, timeout=120) as session:
        assert session.get("/v1/projects/acme/shop", headers=admin).json()["applied_state"] == "active"
        assert session.get("/v1/projects/acme/fresh", headers=admin).status_code == 404  # the catalog is held now
        created = session.post("/v1/projects", json=new_project("fresh"), headers=admin)
        assert created.status_code == 201, created.text
        shown = session.get("/v1/projects/acme/fresh", headers=admin)
        assert shown.status_code == 200 and shown.json()["applied_state"] == "active"
        suspended = session.patch("/v1/projects/acme/fresh", json={"state": "suspended"}, headers=admin)
        assert suspended.status_code == 200, suspended.text
        listed = {p["ref"]: p for p in session.get("/v1/projects", headers=admin).json()["projects"]}
        assert listed["fresh"]["declared_state"] == listed["fresh"]["applied_state"] == "suspended"
