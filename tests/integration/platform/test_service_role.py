"""The service logged in as its own role (nextmavens_platform, as on the host): its flows work on a real cluster
(tokens, listing, keys read and rotated, migrations, a webhook stored, audit), its sessions are no superuser's, the
role holds exactly the control tables' grants listed here, and it can reach nothing else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import members
from nextmavens.naming import CONTROL_DATABASE, PLATFORM_ROLE
from nextmavens.platform.dbrole import ControlNotReady, prepare_control
from nextmavens.platform.passwords import hash_password
from nextmavens.platform.service import Service
from tests.integration.platform.harness import (
    PlatformStage,
    bearer,
    captured_logs,
    running_service,
    service_settings,
    write_manifests,
)
from tests.support.engine import Stage
from tests.support.projects import write_project
from tests.support.scratch import cloned_server

PASSWORD = "platform-role-test-password"
# Every control table and what the service's role may do there (UPDATE: the columns). A new table fails the grants
# test until it is listed here, so none is granted (or left out) without a decision.
GRANTS: dict[str, tuple[set[str], set[str]]] = {
    "access_tokens": ({"SELECT", "INSERT"}, {"last_used_at", "revoked_at"}),
    "api_keys": ({"SELECT", "INSERT"}, {"revoked_at"}),
    "apply_runs": ({"SELECT", "INSERT"}, {"finished_at", "result", "error"}),
    "audit_log": ({"SELECT", "INSERT"}, set()),
    "backup_chunks": (set(), set()),
    "backup_verifications": ({"SELECT"}, set()),
    "dashboard_sessions": ({"SELECT", "INSERT"}, {"verified", "last_seen_at", "revoked_at"}),
    "backups": ({"SELECT"}, set()),
    "member_credentials": (
        {"SELECT", "INSERT"},
        {
            "password_hash",
            "totp_nonce",
            "totp_ciphertext",
            "totp_last_step",  # 0610: the last accepted TOTP step (a code is good once)
            "failed_signins",
            "locked_until",
            "updated_at",
        },
    ),
    "member_invites": ({"SELECT"}, {"used_at"}),
    "orgs": ({"SELECT"}, set()),
    "projects": ({"SELECT"}, {"keys_issued_at", "keys_expires_at"}),
    "schema_migrations": ({"SELECT"}, set()),
    "secrets": ({"SELECT", "INSERT"}, {"nonce", "ciphertext", "created_at"}),
    # metrics, uptime and alerts (migrations 1000, 1010): read for the API and the dashboard, written by the collector
    **{
        table: ({"SELECT"}, set())
        for table in (
            "metric_scopes", "metric_series", "metric_raw", "metric_5m", "metric_1h", "metric_rollups",
            "uptime_days", "uptime_events", "alerts",
        )
    },
}


def role_dsn(stage: Stage, dbname: str = CONTROL_DATABASE) -> str:
    return stage.server.dsn_for(dbname, user=PLATFORM_ROLE, password=PASSWORD)


@pytest.fixture(scope="module")
def role_stage(pg_template: Any) -> Iterator[PlatformStage]:
    with cloned_server(pg_template, "nextmavens-svcrole-") as (server, base):
        projects = base / "projects"
        write_manifests(projects)
        write_project(projects, "acme", "shop", whatsapp={"instances": [{"name": "sales"}]})
        stage = Stage(server=server, projects=projects, master_key=base / "keys" / "master.key")
        stage.apply()  # as the admin: creates the control database, its migrations and the role (NOLOGIN)
        stage.sql(f"ALTER ROLE {PLATFORM_ROLE} LOGIN PASSWORD '{PASSWORD}'")  # the deploy's step
        settings = service_settings(stage, dsn=role_dsn(stage), forward_poll_s=3600.0)
        with captured_logs() as logs, running_service(settings) as url:
            yield PlatformStage(stage=stage, url=url, logs=logs)


@pytest.fixture(scope="module")
def client(role_stage: PlatformStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=role_stage.url, timeout=60) as session:
        yield session


def as_role(stage: PlatformStage, query: str, dbname: str = CONTROL_DATABASE) -> list[tuple[Any, ...]]:
    with psycopg.connect(role_dsn(stage.stage, dbname), autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_the_services_sessions_are_its_role_and_no_superusers(role_stage: PlatformStage) -> None:
    sessions = role_stage.stage.sql(
        "SELECT a.usename, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename"
        " WHERE a.application_name = 'nextmavens-platform'"
    )
    assert sessions and set(sessions) == {(PLATFORM_ROLE, False)}
    attributes = role_stage.stage.sql(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s",
        (PLATFORM_ROLE,),
    )
    assert attributes == [(False, False, False, False, False)]


def test_tokens_listing_keys_rotation_and_audit_work_as_the_role(
    role_stage: PlatformStage, client: httpx.Client
) -> None:
    owner = bearer(role_stage, "owner@acme.test")
    created = client.post("/v1/tokens", json={"org": "acme", "name": "ci"}, headers=owner)
    assert created.status_code == 201, created.text
    ci = {"Authorization": f"Bearer {created.json()['token']}"}
    assert {p["ref"] for p in client.get("/v1/projects", headers=ci).json()["projects"]} == {"shop", "crm"}
    assert created.json()["id"] in {t["id"] for t in client.get("/v1/tokens", headers=owner).json()["tokens"]}
    keys = client.get("/v1/projects/acme/shop/keys", headers=owner)
    assert keys.status_code == 200 and keys.json()["service_role_key"], keys.text
    rotated = client.post("/v1/projects/acme/shop/keys/rotate", headers=owner)
    assert rotated.status_code == 200, rotated.text
    again = client.get("/v1/projects/acme/shop/keys", headers=owner).json()
    assert again["service_role_key"] != keys.json()["service_role_key"]
    runs = role_stage.stage.sql(
        "SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 1", dbname=CONTROL_DATABASE
    )
    assert runs == [("keys rotate", "ok")]
    revoked = client.delete(f"/v1/tokens/{created.json()['id']}", headers=owner)
    assert revoked.status_code == 200, revoked.text
    assert client.get("/v1/projects", headers=ci).status_code == 401
    audit = client.get("/v1/orgs/acme/audit", headers=owner).json()["entries"]
    assert {"tokens.create", "keys.rotate", "tokens.revoke"} <= {e["action"] for e in audit}


def test_migrations_run_as_the_owner_and_a_webhook_is_stored(role_stage: PlatformStage, client: httpx.Client) -> None:
    dev = bearer(role_stage, "dev@acme.test")
    body = {"migrations": [{"version": "20250101000000", "name": "t", "sql": "create table public.t (a int)"}]}
    applied = client.post("/v1/projects/acme/crm/migrations", json=body, headers=dev)
    assert applied.status_code == 200 and applied.json()["applied"], applied.text
    with role_stage.stage.engine().secrets() as store:
        pair = store.whatsapp_secrets("shop", "sales")
    assert pair is not None
    now = int(time.time())
    signed = jwt.encode({"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}, pair[1], "HS256")
    message = {
        "event": "messages.upsert",
        "instance": "shop--sales",
        "data": {
            "key": {"remoteJid": "5511999990000@s.whatsapp.net", "fromMe": False, "id": "ROLE-1"},
            "message": {"conversation": "hi"},
            "messageType": "conversation",
            "messageTimestamp": now,
        },
    }
    stored = client.post(
        "/hooks/evolution/acme/shop/sales", json=message, headers={"Authorization": f"Bearer {signed}"}
    )
    assert stored.status_code == 200 and stored.json() == {"stored": True}, stored.text
    rows = role_stage.stage.sql("SELECT count(*) FROM whatsapp.messages WHERE message_id = 'ROLE-1'", dbname="shop")
    assert rows == [(1,)]


def test_the_dashboard_signs_in_and_shows_pages_as_the_role(role_stage: PlatformStage, client: httpx.Client) -> None:
    with connect_control(role_stage.stage.server.dsn) as conn:
        members.set_password(conn, "admin@acme.test", hash_password("dashboard password 123"))
    form = client.get("/signin")
    presign = form.headers["set-cookie"].split(";")[0]
    assert "; Secure" in form.headers["set-cookie"]
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    answer = client.post(
        "/signin",
        data={"email": "admin@acme.test", "password": "dashboard password 123", "csrf": token},
        headers={"Cookie": presign},
    )
    assert answer.status_code == 303, answer.text
    session = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("nm_session="))
    assert "; Secure" in session and "HttpOnly" in session
    cookie = {"Cookie": session.split(";")[0]}
    for path in ("/orgs/acme", "/orgs/acme/projects/shop", "/tokens", "/account"):
        page = client.get(path, headers=cookie)
        assert page.status_code == 200, (path, page.text[:300])


def test_the_role_holds_exactly_the_listed_grants(role_stage: PlatformStage) -> None:
    rows = role_stage.stage.sql(
        "SELECT c.relname,"
        " ARRAY(SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p"
        "       WHERE has_table_privilege(%(role)s, c.oid, p)),"
        " ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
        "       AND NOT a.attisdropped AND has_column_privilege(%(role)s, c.oid, a.attnum, 'UPDATE'))"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        {"role": PLATFORM_ROLE},  # type: ignore[arg-type]
        dbname=CONTROL_DATABASE,
    )
    found = {name: (set(privileges), set(columns)) for name, privileges, columns in rows}
    assert found == GRANTS
    schema = role_stage.stage.sql(
        "SELECT has_schema_privilege(%s, 'public', 'USAGE'), has_schema_privilege(%s, 'public', 'CREATE')",
        (PLATFORM_ROLE, PLATFORM_ROLE),
        dbname=CONTROL_DATABASE,
    )
    assert schema == [(True, False)]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE ROLE intruder LOGIN",
        "CREATE DATABASE intruder",
        "ALTER SYSTEM SET log_statement = 'none'",
        "ALTER ROLE nextmavens_platform SUPERUSER",
        "CREATE TABLE public.intruder (a int)",
        "SELECT * FROM backup_chunks",
        "DELETE FROM audit_log",
        "UPDATE access_tokens SET member = 'owner@acme.test'",
        "SELECT pg_read_file('postgresql.conf')",
        "COPY (SELECT 1) TO PROGRAM 'true'",
    ],
)
def test_the_role_cannot_act_beyond_its_grants(role_stage: PlatformStage, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role(role_stage, statement)


def test_the_role_cannot_read_a_project_database(role_stage: PlatformStage) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        as_role(role_stage, "SELECT 1", dbname="shop")


def test_a_pending_migration_stops_the_role_at_open_with_what_to_run(role_stage: PlatformStage) -> None:
    stage = role_stage.stage
    stage.sql("DELETE FROM schema_migrations WHERE version = '0500_platform_role'", dbname=CONTROL_DATABASE)
    try:
        with pytest.raises(ControlNotReady, match="0500_platform_role.*nextmavens apply"):
            prepare_control(role_dsn(stage))
    finally:
        stage.sql("INSERT INTO schema_migrations (version) VALUES ('0500_platform_role')", dbname=CONTROL_DATABASE)
    assert prepare_control(role_dsn(stage)) is False
    assert prepare_control(stage.server.dsn) is True


def test_a_new_cluster_without_grants_refuses_the_role_clearly(pg_template: Any) -> None:
    with cloned_server(pg_template, "nextmavens-svcrole-bare-") as (server, base):
        write_manifests(base / "projects")
        server_sql = Stage(server=server, projects=base / "projects", master_key=base / "master.key").sql
        server_sql(f"CREATE ROLE {PLATFORM_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        with pytest.raises(ControlNotReady, match="cannot read the control database"):
            prepare_control(server.dsn_for("postgres", user=PLATFORM_ROLE, password=PASSWORD))
        assert prepare_control(server.dsn) is True  # the admin's login creates and migrates it, as before
        prepare_control(server.dsn_for("postgres", user=PLATFORM_ROLE, password=PASSWORD))


def test_privileged_mode_warns_when_its_login_is_a_superuser(role_stage: PlatformStage) -> None:
    stage = role_stage.stage
    for dsn, warned in ((stage.server.dsn, True), (role_dsn(stage), False)):
        service = Service(service_settings(stage, dsn=dsn, privileged_argv=("false",), forward_poll_s=3600.0))
        with captured_logs() as logs:
            service.open()
            service.close()
        assert any("login is a superuser" in line and PLATFORM_ROLE in line for line in logs.lines) is warned
