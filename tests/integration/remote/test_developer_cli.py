"""The developer commands end to end: the real platform service on loopback over a real PostgreSQL, the CLI run
through click's runner exactly as the `nextmavens` executable dispatches it (nextmavens.entry)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from nextmavens.entry import developer_group
from nextmavens.remote.api import ApiClient, RemoteError
from nextmavens.remote.credentials import store_login
from tests.integration.platform.harness import PlatformStage, repository_stage
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def stage(pg_template: Any) -> Iterator[PlatformStage]:
    with repository_stage(pg_template, "nextmavens-devcli-") as running:
        yield running


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder of its own and an empty working folder; no login in the environment."""
    for name in ("NEXTMAVENS_URL", "NEXTMAVENS_TOKEN", "NEXTMAVENS_DSN", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(tmp_path / "config" / "nextmavens"))
    work = tmp_path / "app"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(developer_group(), list(args), input=stdin, env=env, prog_name="nextmavens")


def login(stage: PlatformStage, member: str, **scope: Any) -> str:
    token = stage.issue(member, **scope)[1]
    result = run("login", "--url", stage.url, "--token", token)
    assert result.exit_code == 0, result.output
    return token


def test_login_checks_the_token_and_stores_it_private(stage: PlatformStage, home: Path) -> None:
    token = stage.issue("dev@acme.test")[1]
    result = run("login", "--url", stage.url, stdin=f"{token}\n")  # asked for, hidden
    assert result.exit_code == 0, result.output
    assert token not in result.output  # hidden input is not echoed, and no message repeats it
    assert "dev@acme.test" in result.stderr
    stored = home / "config" / "nextmavens" / "login.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    stored_login = json.loads(stored.read_text())
    assert stored_login == {"url": stage.url, "token": token, "token_id": stored_login["token_id"]}
    assert stored_login["token_id"].startswith("tok_")  # its public id, named by `logout` when it cannot revoke

    whoami = run("whoami", "--json")
    assert whoami.exit_code == 0
    me = json.loads(whoami.stdout)
    assert (me["member"], me["orgs"], me["url"]) == ("dev@acme.test", {"acme": "developer"}, stage.url)

    assert run("logout").exit_code == 0
    assert not stored.exists()
    after = run("whoami")
    assert after.exit_code == 3 and "nextmavens login" in after.stderr


def test_a_wrong_token_is_refused_and_nothing_is_stored(stage: PlatformStage, home: Path) -> None:
    result = run("login", "--url", stage.url, "--token", "nmp_" + "x" * 40)
    assert result.exit_code == 3
    assert "refused the token" in result.stderr and "nothing was stored" in result.stderr
    assert not (home / "config" / "nextmavens" / "login.json").exists()
    garbage = run("login", "--url", stage.url, "--token", "hunter2")
    assert garbage.exit_code == 1 and "start with nmp_" in garbage.stderr


def test_an_expired_token_says_to_log_in_again(stage: PlatformStage, home: Path) -> None:
    expired = stage.issue("dev@acme.test", expires_at=datetime.now(UTC) - timedelta(seconds=1))[1]
    store_login(stage.url, expired)  # it was valid when stored
    result = run("projects")
    assert result.exit_code == 3
    assert "expired" in result.stderr and "nextmavens login" in result.stderr
    assert result.stdout == ""


def test_projects_json_is_json_only_and_scoped_to_the_login(stage: PlatformStage, home: Path) -> None:
    login(stage, "dev@acme.test")
    result = run("projects", "--json")
    assert result.exit_code == 0, result.output
    seen = {(p["org"], p["ref"]) for p in json.loads(result.stdout)["projects"]}
    assert ("acme", "shop") in seen and ("globex", "web") not in seen
    table = run("projects")
    assert "acme/shop" in table.stdout and "PROJECT" in table.stdout


def test_the_environment_overrides_the_stored_login(stage: PlatformStage, home: Path) -> None:
    login(stage, "dev@acme.test")
    boss = stage.issue("boss@globex.test")[1]
    result = run("whoami", "--json", env={"NEXTMAVENS_URL": stage.url, "NEXTMAVENS_TOKEN": boss})
    assert json.loads(result.stdout)["member"] == "boss@globex.test"
    half = run("whoami", env={"NEXTMAVENS_URL": stage.url})
    assert half.exit_code == 3 and "NEXTMAVENS_TOKEN is not set" in half.stderr


def test_link_then_a_command_without_org_ref(stage: PlatformStage, home: Path) -> None:
    login(stage, "dev@acme.test")
    assert run("project").exit_code == 1  # no link yet: says so
    hidden = run("link", "globex/web")
    assert hidden.exit_code == 1 and "no project globex/web" in hidden.stderr
    assert not Path(".nextmavens/project").exists()
    assert run("link", "acme/shop").exit_code == 0
    assert Path(".nextmavens/project").read_text() == "acme/shop\n"
    shown = run("project", "--json")
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert (detail["org"], detail["ref"]) == ("acme", "shop")
    assert detail["api_url"] and detail["anon_key"]


def test_create_project_prints_the_api_url_the_anon_key_and_next_steps(stage: PlatformStage, home: Path) -> None:
    login(stage, "dev@acme.test")
    refused = run("create-project", "acme/newshop", "--name", "New", "--site-url", "https://new.example")
    assert refused.exit_code == 1 and "admin role" in refused.stderr  # a developer may not: which role may

    login(stage, "admin@acme.test")
    result = run(
        "create-project", "acme/newshop", "--name", "New shop", "--site-url", "https://new.example", "--link"
    )
    assert result.exit_code == 0, result.output
    keys = stage.stage.sql("SELECT 1 FROM pg_database WHERE datname LIKE %s", ("%newshop%",))
    assert keys, "the project's database exists"
    assert "API URL:" in result.stdout and "anon key: ey" in result.stdout
    assert "Next steps" in result.stderr and "nextmavens db new" in result.stderr
    assert Path(".nextmavens/project").read_text() == "acme/newshop\n"

    again = run("create-project", "acme/newshop", "--name", "x", "--site-url", "https://new.example", "--json")
    assert again.exit_code == 1 and again.stdout == "" and "already exists" in again.stderr


def test_no_color_and_pipes_get_no_escape_codes(stage: PlatformStage, home: Path) -> None:
    login(stage, "dev@acme.test")
    for env in ({"NO_COLOR": "1"}, {}):
        result = CliRunner().invoke(developer_group(), ["link", "acme/shop"], env=env, color=True)  # a terminal
        assert result.exit_code == 0
        assert ("\x1b[" in result.stderr) is (not env)  # colour when asked for a terminal, never with NO_COLOR


def test_an_unreachable_service_names_the_url(home: Path) -> None:
    result = run("whoami", env={"NEXTMAVENS_URL": "http://127.0.0.1:25401", "NEXTMAVENS_TOKEN": "nmp_x"})
    assert result.exit_code == 4
    assert "http://127.0.0.1:25401" in result.stderr and "connection refused" in result.stderr
    assert "nmp_x" not in result.output


def answers(stage: PlatformStage, token: str) -> int:
    """The status GET /v1/me answers the token with."""
    try:
        ApiClient(stage.url, token).get("/v1/me")
    except RemoteError as exc:
        return exc.status
    return 200


def revocations(stage: PlatformStage, token_id: str) -> list[tuple[str, str]]:
    return [
        (str(actor), str(result))
        for actor, result in stage.stage.sql(
            "SELECT actor, result FROM audit_log WHERE action = 'tokens.revoke' AND detail->>'token' = %s",
            (token_id,),
            dbname="nextmavens",
        )
    ]


@pytest.mark.parametrize("read_only", [False, True])
def test_logout_revokes_the_token_on_the_service_then_removes_the_login(
    stage: PlatformStage, home: Path, read_only: bool
) -> None:
    token_id, token = stage.issue("dev@acme.test", read_only=read_only)  # a read-only token may end itself too
    assert run("login", "--url", stage.url, "--token", token).exit_code == 0
    stored = home / "config" / "nextmavens" / "login.json"
    assert answers(stage, token) == 200

    result = run("logout")
    assert result.exit_code == 0, result.output
    assert "revoked" in result.stderr and not stored.exists()
    assert answers(stage, token) == 401  # revoked on the service, not only forgotten here
    assert revocations(stage, token_id) == [("dev@acme.test", "ok")]  # audited as every revocation

    again = run("logout")
    assert again.exit_code == 0 and "No stored login" in again.stderr


def test_logout_with_a_token_the_service_already_refuses_removes_the_login(stage: PlatformStage, home: Path) -> None:
    expired = stage.issue("dev@acme.test", expires_at=datetime.now(UTC) - timedelta(seconds=1))[1]
    stored = store_login(stage.url, expired)
    result = run("logout")
    assert result.exit_code == 0, result.output
    assert "already invalid, expired or revoked" in result.stderr and not stored.exists()


def test_logout_without_the_service_removes_the_login_and_says_the_token_lives_on(
    stage: PlatformStage, home: Path
) -> None:
    token_id, token = stage.issue("dev@acme.test")
    closed = f"http://127.0.0.1:{free_port()}"
    stored = store_login(closed, token, token_id=token_id)
    result = run("logout")
    assert result.exit_code == 4, result.output  # unreachable, as every developer command says it
    assert not stored.exists()
    message = " ".join(result.stderr.split())
    assert f"token {token_id} was NOT revoked" in message and closed in message
    assert f"nextmavens token revoke {token_id}" in message and f"DELETE /v1/tokens/{token_id}" in message
    assert token not in result.output
    assert answers(stage, token) == 200 and revocations(stage, token_id) == []  # it does live on


def test_logout_removes_an_unreadable_login_and_says_nothing_was_revoked(home: Path) -> None:
    stored = home / "config" / "nextmavens" / "login.json"
    stored.parent.mkdir(parents=True)
    stored.write_text("{not json")
    result = run("logout")
    assert result.exit_code == 1 and not stored.exists()
    assert "no token was revoked" in " ".join(result.stderr.split())
