"""Migrations through the API against a real cluster: applied as the project's owner role (never a superuser's
session), each with its history row in Supabase's table or not at all, refusals, and the audit rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.platform.harness import PlatformStage, bearer

PATH = "/v1/projects/acme/crm/migrations"
V1, V2, V3, V4 = "20250101000000", "20250102000000", "20250103000000", "20250104000000"
WHO = (
    "create table public.who as select current_user::text as cu, session_user::text as su,"
    " (select rolsuper from pg_roles where rolname = session_user) as super;\n"
    "-- second statement\ncreate table public.notes (body text default 'a;b')"
)


@pytest.fixture(scope="module")
def client(platform_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_stage.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def dev(platform_stage: PlatformStage) -> dict[str, str]:
    return bearer(platform_stage, "dev@acme.test")


def crm(platform_stage: PlatformStage, query: str) -> list[tuple[Any, ...]]:
    return platform_stage.stage.sql(query, dbname="crm")


def post(client: httpx.Client, headers: dict[str, str], *migrations: tuple[str, str, str], **extra: Any) -> Any:
    body = {"migrations": [{"version": v, "name": n, "sql": s} for v, n, s in migrations], **extra}
    return client.post(PATH, json=body, headers=headers)


def test_migrations_run_as_the_owner_role_and_are_recorded_as_the_supabase_cli_does(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    assert client.get(PATH, headers=dev).json() == {"project": "acme/crm", "migrations": []}
    answer = post(client, dev, (V1, "who", WHO))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "project": "acme/crm",
        "applied": [{"version": V1, "name": "who"}],
        "skipped": [],
        "failed": None,
    }
    assert crm(platform_stage, "SELECT cu, su, super FROM public.who") == [("owner_crm", "owner_crm", False)]
    statements = [WHO.split(";\n")[0], WHO.split(";\n")[1]]
    assert crm(platform_stage, "SELECT version, name, statements FROM supabase_migrations.schema_migrations") == [
        (V1, "who", statements)
    ]
    owners = crm(
        platform_stage,
        "SELECT n.nspowner::regrole::text, c.relowner::regrole::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = 'supabase_migrations.schema_migrations'::regclass",
    )
    assert owners == [("owner_crm", "owner_crm")]
    # The whole folder again: nothing to do.
    again = post(client, dev, (V1, "who", WHO)).json()
    assert again["applied"] == [] and again["skipped"] == [V1]
    assert client.get(PATH, headers=dev).json()["migrations"] == [{"version": V1, "name": "who"}]


def test_a_migration_cannot_become_superuser(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    answer = post(client, dev, (V1, "who", WHO), (V2, "escalate", "RESET ROLE; ALTER ROLE owner_crm SUPERUSER"))
    body = answer.json()
    assert answer.status_code == 200 and body["applied"] == []
    assert body["failed"]["version"] == V2 and body["failed"]["statement"] == 2
    assert body["failed"]["sqlstate"] == "42501", body  # insufficient_privilege
    assert crm(platform_stage, "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner_crm'") == [(False,)]
    assert [r[0] for r in crm(platform_stage, "SELECT version FROM supabase_migrations.schema_migrations")] == [V1]


def test_a_failing_migration_rolls_back_with_its_row_and_stops_the_run(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    answer = post(
        client,
        dev,
        (V1, "who", WHO),
        (V2, "fine", "create table public.fine (id int);\n-- a trailing note\n"),
        (V3, "broken", "create table public.half (id int); select 1/0"),
        (V4, "later", "create table public.later (id int)"),
    )
    body = answer.json()
    assert [a["version"] for a in body["applied"]] == [V2]
    assert body["failed"] == {"version": V3, "statement": 2, "sqlstate": "22012", "message": "division by zero"}
    tables = {r[0] for r in crm(platform_stage, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "fine" in tables and "half" not in tables and "later" not in tables
    versions = [r[0] for r in crm(platform_stage, "SELECT version FROM supabase_migrations.schema_migrations")]
    assert versions == [V1, V2]


def test_a_migration_that_would_end_its_transaction_is_refused_before_anything_runs(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    answer = post(
        client, dev, (V1, "", ""), (V2, "", ""), (V3, "commits", "create table public.early (id int); /* x */ commit")
    )
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "transaction_control"
    assert "early" not in {r[0] for r in crm(platform_stage, "SELECT tablename FROM pg_tables")}
    assert V3 not in [r[0] for r in crm(platform_stage, "SELECT version FROM supabase_migrations.schema_migrations")]


def test_missing_and_out_of_order_versions_are_refused_unless_include_all(
    platform_stage: PlatformStage, client: httpx.Client, dev: dict[str, str]
) -> None:
    missing = post(client, dev, (V4, "later", "select 1"))
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "missing_versions"
    forced = post(client, dev, (V4, "later", "select 1"), include_all=True)
    assert forced.json()["applied"] == [{"version": V4, "name": "later"}]
    older = post(client, dev, (V1, "", ""), (V2, "", ""), (V3, "old", "select 1"), (V4, "", ""))
    assert older.status_code == 409 and older.json()["error"]["code"] == "out_of_order"
    assert V3 not in [r[0] for r in crm(platform_stage, "SELECT version FROM supabase_migrations.schema_migrations")]


def test_bad_versions_and_bodies_are_refused_before_anything_runs(client: httpx.Client, dev: dict[str, str]) -> None:
    for version in ("1", "20251301000000", "2025010100000x"):
        answer = post(client, dev, (version, "x", "select 1"))
        assert answer.status_code in (409, 422), answer.text
    assert post(client, dev, (V1, "bad name!", "select 1")).status_code == 422
    assert client.post(PATH, json={"migrations": [], "other": 1}, headers=dev).status_code == 422


def test_reads_need_only_a_read_only_token_and_writes_are_audited_without_sql(
    platform_stage: PlatformStage, client: httpx.Client
) -> None:
    reader = bearer(platform_stage, "dev@acme.test", read_only=True)
    assert client.get(PATH, headers=reader).status_code == 200
    assert post(client, reader, (V1, "", "")).status_code == 403
    rows = platform_stage.stage.sql(
        "SELECT actor, result, detail FROM audit_log WHERE action = 'migrations.apply' ORDER BY id", dbname="nextmavens"
    )
    assert ("dev@acme.test", "forbidden") in [(actor, result) for actor, result, _ in rows]
    assert any(result == "ok" and detail.get("applied") == [V1] for _, result, detail in rows)
    assert any(result == "refused" and detail.get("error") == "out_of_order" for _, result, detail in rows)
    text = json.dumps([detail for _, _, detail in rows])
    assert "create table" not in text and "division" not in text
