"""PUT /v1/orgs/{org}/members end to end: a real server, a real PostgreSQL and a git repository as the projects
folder. The owner's list becomes the org.yaml, applied (the members recorded, so a removed member's tokens stop
working) and committed as the owner; a refused list leaves the file and the history as they were."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.platform.harness import ACME_MEMBERS, PlatformStage, bearer, git, repository_stage

PATH = "/v1/orgs/acme/members"


@pytest.fixture(scope="module")
def stage(pg_template: Any) -> Iterator[PlatformStage]:
    with repository_stage(pg_template, "nextmavens-members-") as running:
        yield running


@pytest.fixture(scope="module")
def client(stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stage.url, timeout=120) as session:
        yield session


def listing(members: dict[str, str]) -> list[dict[str, str]]:
    return [{"email": email, "role": role} for email, role in members.items()]


def head(stage: PlatformStage) -> str:
    return git(stage.stage.projects, "rev-parse", "HEAD").strip()


def org_file(stage: PlatformStage) -> bytes:
    return (stage.stage.projects / "acme" / "org.yaml").read_bytes()


def audit_results(stage: PlatformStage) -> list[str]:
    rows = stage.stage.sql(
        "SELECT result FROM audit_log WHERE action = 'members.manage' ORDER BY id", dbname="nextmavens"
    )
    return [row[0] for row in rows]


def test_an_owner_adds_a_developer_who_can_then_use_a_token(stage: PlatformStage, client: httpx.Client) -> None:
    members = {**ACME_MEMBERS, "new@acme.test": "developer"}
    answer = client.put(PATH, json=listing(members), headers=bearer(stage, "owner@acme.test"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["commit"] == head(stage)
    assert {m["email"]: m["role"] for m in body["members"]} == members
    assert any(change["kind"] == "org" for change in body["apply"]["changes"]), body["apply"]
    projects = stage.stage.projects
    assert git(projects, "log", "-1", "--format=%an|%cn|%s") == (
        "owner@acme.test|NextMavens platform|Set the members of acme (6)\n"
    )
    assert git(projects, "show", "--name-only", "--format=", "HEAD").split() == ["acme/org.yaml"]
    assert git(projects, "status", "--porcelain") == ""
    written = yaml.safe_load(org_file(stage))
    assert written["name"] == "Acme" and listing(members) == written["members"]
    assert stage.stage.plan().empty
    me = client.get("/v1/me", headers=bearer(stage, "new@acme.test"))
    assert me.status_code == 200 and me.json()["orgs"] == {"acme": "developer"}
    assert audit_results(stage)[-1] == "ok"
    again = client.put(PATH, json=listing(members), headers=bearer(stage, "owner@acme.test"))
    assert again.status_code == 200 and again.json()["commit"] is None and again.json()["apply"] is None
    assert audit_results(stage)[-1] == "unchanged"


def test_removing_a_member_disables_their_tokens(stage: PlatformStage, client: httpx.Client) -> None:
    leaver = bearer(stage, "leaver@acme.test")
    assert client.get("/v1/projects/acme/shop", headers=leaver).status_code == 200
    members = {email: role for email, role in ACME_MEMBERS.items() if email != "leaver@acme.test"}
    answer = client.put(PATH, json=listing(members), headers=bearer(stage, "owner@acme.test"))
    assert answer.status_code == 200, answer.text
    assert "leaver@acme.test" not in {m["email"] for m in answer.json()["members"]}
    refused = client.get("/v1/projects/acme/shop", headers=leaver)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    reasons = stage.stage.sql(
        "SELECT detail->>'reason' FROM audit_log WHERE actor = 'leaver@acme.test' ORDER BY id DESC LIMIT 1",
        dbname="nextmavens",
    )
    assert reasons == [("not_a_member",)]


def test_only_the_orgs_owners_may(stage: PlatformStage, client: httpx.Client) -> None:
    before, text = head(stage), org_file(stage)
    body = listing({"admin@acme.test": "owner"})
    for member in ("admin@acme.test", "dev@acme.test"):
        assert client.put(PATH, json=body, headers=bearer(stage, member)).status_code == 403
    read_only = client.put(PATH, json=body, headers=bearer(stage, "owner@acme.test", read_only=True))
    assert read_only.status_code == 403
    project_token = client.put(PATH, json=body, headers=bearer(stage, "owner@acme.test", org="acme", project="shop"))
    assert project_token.status_code == 403
    outsider = client.put(PATH, json=body, headers=bearer(stage, "boss@globex.test"))
    assert outsider.status_code == 404 and outsider.json()["error"]["code"] == "not_found"
    assert head(stage) == before and org_file(stage) == text
    assert audit_results(stage)[-5:] == ["forbidden", "forbidden", "forbidden", "forbidden", "not_found"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([], "members: an org must keep at least one owner"),
        ([{"email": "owner@acme.test", "role": "admin"}], "members: an org must keep at least one owner"),
        (
            [{"email": "owner@acme.test", "role": "owner"}, {"email": "x@acme.test", "role": "king"}],
            "members[1].role: Input should be 'owner', 'admin' or 'developer'",
        ),
        (
            [{"email": "owner@acme.test", "role": "owner"}, {"email": "Owner@Acme.test", "role": "developer"}],
            "members: ",
        ),
        ([{"email": "not an email", "role": "owner"}], "members[0].email: "),
    ],
)
def test_a_refused_list_leaves_no_commit_and_the_file_unchanged(
    stage: PlatformStage, client: httpx.Client, members: list[dict[str, str]], message: str
) -> None:
    before, text = head(stage), org_file(stage)
    answer = client.put(PATH, json=members, headers=bearer(stage, "owner@acme.test"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_request" and message in answer.json()["error"]["message"]
    assert head(stage) == before and org_file(stage) == text
    assert git(stage.stage.projects, "status", "--porcelain") == ""
    assert audit_results(stage)[-1] == "invalid"


def test_an_owner_steps_down_only_while_another_owner_remains(stage: PlatformStage, client: httpx.Client) -> None:
    owner = bearer(stage, "owner@acme.test")
    handed_over = {**ACME_MEMBERS, "owner@acme.test": "admin", "admin@acme.test": "owner"}
    handed_over.pop("leaver@acme.test")
    answer = client.put(PATH, json=listing(handed_over), headers=owner)
    assert answer.status_code == 200, answer.text
    # Now an admin: the same token may no longer manage members.
    assert client.put(PATH, json=listing(ACME_MEMBERS), headers=owner).status_code == 403
    new_owner = bearer(stage, "admin@acme.test")
    alone = {**handed_over, "admin@acme.test": "developer"}
    refused = client.put(PATH, json=listing(alone), headers=new_owner)
    assert refused.status_code == 422 and "at least one owner" in refused.json()["error"]["message"]
    restored = client.put(PATH, json=listing(ACME_MEMBERS), headers=new_owner)
    assert restored.status_code == 200, restored.text


def test_without_a_manifest_repository(stage: PlatformStage, client: httpx.Client) -> None:
    projects = stage.stage.projects
    text = org_file(stage)
    (projects / ".git").rename(projects.parent / "git-away")
    try:
        answer = client.put(PATH, json=listing({"owner@acme.test": "owner"}), headers=bearer(stage, "owner@acme.test"))
    finally:
        (projects.parent / "git-away").rename(projects / ".git")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_manifest_repository"
    assert org_file(stage) == text
    assert audit_results(stage)[-1] == "failed"


def test_an_org_without_its_org_file_in_the_repository_is_not_found(stage: PlatformStage, client: httpx.Client) -> None:
    # Removed from the work tree but not applied yet: the members (and the owner's role) are still recorded.
    org_yaml = stage.stage.projects / "acme" / "org.yaml"
    away = stage.stage.projects.parent / "org-away.yaml"
    before = head(stage)
    org_yaml.rename(away)
    try:
        answer = client.put(PATH, json=listing(ACME_MEMBERS), headers=bearer(stage, "owner@acme.test"))
    finally:
        away.rename(org_yaml)
    assert answer.status_code == 404 and answer.json()["error"]["message"] == "no org acme"
    assert head(stage) == before and git(stage.stage.projects, "status", "--porcelain") == ""
    assert audit_results(stage)[-1] == "not_found"
