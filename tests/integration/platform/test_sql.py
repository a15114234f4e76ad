"""POST /v1/projects/{org}/{ref}/sql against a real cluster: every attack an AI tool's prompt-injected SQL may try
fails, and the database is checked afterwards (a refusal that still ran half the text would pass a status check)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.platform.harness import PlatformStage, bearer
from tests.support.projects import write_project

SQL = "/v1/projects/acme/shop/sql"


@pytest.fixture(scope="module")
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def admin(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "admin@acme.test")


@pytest.fixture(scope="module")
def dev(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "dev@acme.test")


@pytest.fixture(scope="module", autouse=True)
def victim(platform_stage: PlatformStage) -> None:
    """shop's table the attacks aim at, and a table of crm (another project of the same org)."""
    platform_stage.stage.sql(
        "CREATE TABLE IF NOT EXISTS public.victim (id int PRIMARY KEY, secret text);"
        "ALTER TABLE public.victim OWNER TO owner_shop;"
        "INSERT INTO public.victim VALUES (1, 'keep me') ON CONFLICT DO NOTHING;"
        "GRANT SELECT ON public.victim TO readonly_shop",
        dbname="shop",
    )
    platform_stage.stage.sql("CREATE TABLE IF NOT EXISTS public.crm_only (x int)", dbname="crm")


def run(client: httpx.Client, headers: dict[str, str], query: str, **extra: Any) -> httpx.Response:
    return client.post(SQL, json={"query": query, **extra}, headers=headers)


def victim_rows(platform_stage: PlatformStage) -> list[tuple[Any, ...]]:
    return platform_stage.stage.sql("SELECT id, secret FROM public.victim ORDER BY id", dbname="shop")


def test_a_select_runs_as_the_read_only_role_and_returns_data(client: httpx.Client, dev: dict[str, str]) -> None:
    answer = run(client, dev, "SELECT current_user, session_user, id, secret FROM victim")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == ["current_user", "session_user", "id", "secret"]
    assert body["rows"] == [["readonly_shop", "readonly_shop", 1, "keep me"]]
    assert body["truncated"] is False and body["max_rows"] == 1000 and body["timeout_ms"] == 10_000


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1; DROP TABLE victim",
        "COMMIT; DROP TABLE victim",
        "END; DROP TABLE victim; SELECT 1",
        "SELECT 1; SET TRANSACTION READ WRITE; DELETE FROM victim",
    ],
)
@pytest.mark.parametrize("persona", ["dev", "admin"])
def test_a_second_statement_is_refused_and_never_runs(
    platform_stage: PlatformStage, client: httpx.Client, query: str, persona: str, request: pytest.FixtureRequest
) -> None:
    headers = request.getfixturevalue(persona)
    answer = run(client, headers, query, read_only=persona == "dev")
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "multiple_statements"
    assert "one statement per call" in answer.json()["error"]["message"]
    assert victim_rows(platform_stage) == [(1, "keep me")]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("DROP TABLE victim", "sql_failed"),
        ("DELETE FROM victim", "sql_failed"),
        ("WITH gone AS (DELETE FROM victim RETURNING *) SELECT * FROM gone", "sql_failed"),
        ("SET ROLE owner_shop", "sql_failed"),
        ("SELECT set_config('role', 'owner_shop', false)", "sql_failed"),
        ("SET SESSION AUTHORIZATION owner_shop", "sql_failed"),
        ("SELECT rolname, rolpassword FROM pg_authid", "sql_failed"),
        ("SELECT * FROM auth.users", "sql_failed"),
        ("COMMIT", "transaction_ended"),
        ("COPY victim TO STDOUT", "copy_refused"),
        (" ; ", "empty"),
    ],
)
def test_read_only_mode_refuses_writes_and_escapes(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str], query: str, code: str
) -> None:
    answer = run(client, dev, query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    assert victim_rows(platform_stage) == [(1, "keep me")]


def test_reset_role_leaves_the_read_only_role_and_the_next_call_is_the_read_only_role_again(
    client: httpx.Client, dev: dict[str, str]
) -> None:
    reset = run(client, dev, "RESET ROLE")
    assert reset.status_code == 200, reset.text
    session = run(client, dev, "SET default_transaction_read_only = off")
    assert session.status_code == 200  # allowed inside the transaction, undone with it
    again = run(client, dev, "SELECT current_user, current_setting('transaction_read_only')")
    assert again.json()["rows"] == [["readonly_shop", "on"]]


def test_a_developer_token_cannot_write_and_a_read_only_admin_token_neither(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    answer = run(client, dev, "DELETE FROM victim", read_only=False)
    assert answer.status_code == 403 and "sql.write" in answer.json()["error"]["message"]
    reader = bearer(platform_stage, "admin@acme.test", read_only=True)
    assert run(client, reader, "DELETE FROM victim", read_only=False).status_code == 403
    assert run(client, reader, "SELECT 1").status_code == 200
    assert victim_rows(platform_stage) == [(1, "keep me")]


def test_write_mode_runs_as_the_owner_and_commits(
    platform_stage: PlatformStage, client: httpx.Client, admin: dict[str, str]
) -> None:
    answer = run(client, admin, "INSERT INTO victim VALUES (2, 'new') RETURNING current_user, id", read_only=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [["owner_shop", 2]]
    assert run(client, admin, "DELETE FROM victim WHERE id = 2", read_only=False).json()["rows"] == []
    assert victim_rows(platform_stage) == [(1, "keep me")]
    # the owner is no superuser and may become no other role either
    for escape in ("SET ROLE postgres", "SELECT set_config('role', 'readonly_shop', false)"):
        refused = run(client, admin, escape, read_only=False)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "sql_failed", escape
    assert run(client, admin, "SELECT rolpassword FROM pg_authid", read_only=False).status_code == 422


def test_copy_from_the_client_is_refused_and_writes_nothing(
    platform_stage: PlatformStage, client: httpx.Client, admin: dict[str, str]
) -> None:
    answer = run(client, admin, "COPY victim FROM STDIN", read_only=False)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "copy_refused"
    assert run(client, admin, "SELECT count(*) FROM victim", read_only=False).json()["rows"] == [[1]]


def test_session_settings_of_a_write_do_not_reach_the_next_call(client: httpx.Client, admin: dict[str, str]) -> None:
    for _ in range(3):  # every pooled session
        assert run(client, admin, "SET statement_timeout = 0", read_only=False).status_code == 200
        assert run(client, admin, "SET search_path = nowhere", read_only=False).status_code == 200
    for _ in range(3):
        answer = run(client, admin, "SELECT current_setting('search_path')", read_only=False)
        assert answer.json()["rows"] == [['"$user", public']]


def test_another_projects_data_cannot_be_reached(
    platform_stage: PlatformStage, client: httpx.Client, admin: dict[str, str]
) -> None:
    for mode in (True, False):
        answer = run(client, admin, "SELECT * FROM crm.public.crm_only", read_only=mode)
        assert answer.status_code == 422
        assert "cross-database references are not implemented" in answer.json()["error"]["message"]
    # the other org's owner token cannot see the project at all (404, as if it did not exist)
    stranger = bearer(platform_stage, "boss@globex.test")
    assert run(client, stranger, "SELECT 1").status_code == 404
    # a token scoped to crm does not reach shop
    crm_token = bearer(platform_stage, "admin@acme.test", org="acme", project="crm")
    assert run(client, crm_token, "SELECT 1").status_code == 404


def test_a_statement_beyond_the_timeout_is_cancelled(client: httpx.Client, dev: dict[str, str]) -> None:
    started = time.monotonic()
    answer = run(client, dev, "SELECT pg_sleep(30)", timeout_ms=500)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "timeout"
    assert time.monotonic() - started < 5
    # the statement cannot lift its own timeout: the watchdog cancels it
    started = time.monotonic()
    lifted = run(client, dev, "SELECT set_config('statement_timeout', '0', true), pg_sleep(30)", timeout_ms=500)
    assert lifted.status_code == 422 and lifted.json()["error"]["code"] == "timeout"
    assert time.monotonic() - started < 8


def test_a_result_bigger_than_the_cap_is_truncated_and_says_so(client: httpx.Client, dev: dict[str, str]) -> None:
    answer = run(client, dev, "SELECT g FROM generate_series(1, 100000) g")
    body = answer.json()
    assert body["truncated"] is True and body["row_count"] == 1000 and body["rows"][-1] == [1000]
    small = run(client, dev, "SELECT g FROM generate_series(1, 50) g", max_rows=10)
    assert small.json()["row_count"] == 10 and small.json()["truncated"] is True
    capped = run(client, dev, "SELECT g FROM generate_series(1, 5000) g", max_rows=5000)
    assert capped.json()["row_count"] == 1000  # never more than the service's cap


def test_write_mode_beyond_the_cap_still_completes_the_write(
    platform_stage: PlatformStage, client: httpx.Client, admin: dict[str, str]
) -> None:
    query = "INSERT INTO many SELECT g FROM generate_series(1, 1500) g RETURNING x"
    assert run(client, admin, "CREATE TABLE many (x int)", read_only=False).status_code == 200
    answer = run(client, admin, query, read_only=False)
    assert answer.json()["truncated"] is True and answer.json()["row_count"] == 1000
    assert platform_stage.stage.sql("SELECT count(*) FROM many", dbname="shop") == [(1500,)]
    assert run(client, admin, "DROP TABLE many", read_only=False).status_code == 200


def test_tables_and_extensions_are_the_projects_own(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    tables = client.get("/v1/projects/acme/shop/tables", headers=dev).json()
    names = {f"{t['schema']}.{t['name']}" for t in tables["tables"]}
    assert "public.victim" in names and not any(n.startswith(("auth.", "storage.", "pg_")) for n in names)
    assert "public.victim" in tables["without_rls"] and "columns" not in tables["tables"][0]
    verbose = client.get("/v1/projects/acme/shop/tables", params={"verbose": "true"}, headers=dev).json()
    victim = next(t for t in verbose["tables"] if t["name"] == "victim")
    assert victim["primary_key"] == ["id"] and [c["name"] for c in victim["columns"]] == ["id", "secret"]
    extensions = client.get("/v1/projects/acme/shop/extensions", headers=dev).json()["extensions"]
    assert any(e["name"] == "plpgsql" and e["installed_version"] for e in extensions)


def test_the_sql_is_never_in_the_audit_log(platform_stage: PlatformStage, client: httpx.Client) -> None:
    admin = bearer(platform_stage, "admin@acme.test")
    marker = "audit-marker-4711"
    assert run(client, admin, f"SELECT '{marker}'", read_only=False).status_code == 200
    rows = platform_stage.stage.sql(
        "SELECT detail::text FROM audit_log WHERE action = 'sql.write' ORDER BY id DESC LIMIT 1", dbname="nextmavens"
    )
    assert rows and marker not in rows[0][0]
    assert all(marker not in line for line in platform_stage.logs.lines)


def test_a_suspended_project_is_refused_at_once(platform_stage: PlatformStage, client: httpx.Client) -> None:
    boss = bearer(platform_stage, "boss@globex.test")
    path = "/v1/projects/globex/web/sql"
    assert client.post(path, json={"query": "SELECT 1"}, headers=boss).status_code == 200
    stage = platform_stage.stage
    write_project(stage.projects, "globex", "web", state="suspended")
    stage.apply()
    try:
        started = time.monotonic()
        answer = client.post(path, json={"query": "SELECT 1"}, headers=boss)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "unavailable"
        assert "suspended" in answer.json()["error"]["message"] and time.monotonic() - started < 2
        # and its read-only role's pooled session was ended by the suspension, not kept
        sessions = stage.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'readonly_web'")
        assert sessions == [(0,)]
    finally:
        write_project(stage.projects, "globex", "web")
        stage.apply()
    assert client.post(path, json={"query": "SELECT 1"}, headers=boss).status_code == 200


@pytest.mark.parametrize("persona", ["dev", "admin"])
def test_a_pooled_session_closed_by_the_server_is_replaced_without_a_failure(
    platform_stage: PlatformStage, client: httpx.Client, persona: str, request: pytest.FixtureRequest
) -> None:
    """Sessions are not checked with a round trip when taken from the pool: one the server closed meanwhile is
    found at the transaction's start, before the caller's SQL is sent, and the statement runs on a new one."""
    headers = request.getfixturevalue(persona)
    role = "readonly_shop" if persona == "dev" else "owner_shop"
    for _ in range(3):
        assert run(client, headers, "SELECT 1", read_only=persona == "dev").status_code == 200
    pooled = platform_stage.stage.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND application_name = 'nextmavens-sql'", (role,)
    )
    killed = platform_stage.stage.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE usename = %s AND application_name = 'nextmavens-sql'",
        (role,),
    )
    assert killed[0][0] == pooled[0][0] >= 1
    for _ in range(3):  # every pooled session (a server restart closes them all) is found closed in turn
        answer = run(client, headers, "SELECT pg_backend_pid()", read_only=persona == "dev")
        assert answer.status_code == 200, answer.text
