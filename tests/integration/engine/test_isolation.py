"""Isolation between projects on one cluster, checked by logging in as each project's real roles."""

from __future__ import annotations

import itertools
import json

import jwt
import psycopg
import pytest

from nextmavens.engine.plan import Change
from nextmavens.keys import SUPABASE_DEMO_JWT_SECRET, ForbiddenKey
from nextmavens.manifest.loader import load_manifests
from nextmavens.naming import project_names
from tests.support.engine import Stage
from tests.support.keys import verify_api_key
from tests.support.projects import write_project
from tests.support.scratch import cloned_server

REFS = ("shop", "desk", "crm")


@pytest.fixture(scope="module")
def applied(pg_template):  # type: ignore[no-untyped-def]
    """Three applied projects in two orgs, shared by the tests of this module (they only read)."""
    with cloned_server(pg_template, "nextmavens-isolation-") as (server, base):
        projects = base / "projects"
        for org, ref in (("acme", "shop"), ("acme", "crm"), ("globex", "desk")):
            write_project(projects, org, ref)
        stage = Stage(server=server, projects=projects, master_key=base / "master.key")
        stage.apply()
        with stage.login("owner_shop", "shop", "shop") as owner:
            owner.execute(
                "CREATE TABLE notes (id int PRIMARY KEY, owner_id uuid, body text);"
                "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;"
                "CREATE POLICY own_notes ON notes FOR SELECT TO authenticated USING (owner_id = auth.uid());"
                "INSERT INTO notes VALUES (1, '11111111-1111-1111-1111-111111111111', 'mine'),"
                " (2, '22222222-2222-2222-2222-222222222222', 'theirs');"
            )
        yield stage


@pytest.mark.parametrize(("own", "other"), list(itertools.permutations(REFS, 2)))
def test_no_login_role_of_one_project_connects_to_another_projects_database(
    applied: Stage, own: str, other: str
) -> None:
    for role in project_names(own).login_roles:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database|CONNECT privilege"):
            applied.login(role, project_names(other).database, own)
        # ...while its own database lets it in.
        with applied.login(role, project_names(own).database, own) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)


@pytest.mark.parametrize("ref", REFS)
def test_public_has_no_privilege_on_project_databases(applied: Stage, ref: str) -> None:
    rows = applied.sql(
        "SELECT a.privilege_type FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a"
        " WHERE d.datname = %s AND a.grantee = 0",
        (ref,),
    )
    assert rows == []


def test_get_auth_serves_only_the_databases_own_non_superuser_roles(applied: Stage) -> None:
    with psycopg.connect(
        applied.server.dsn_for("shop", user="pgbouncer", password=applied.password("_cluster", "pgbouncer")),
        autocommit=True,
    ) as pooler:
        # The pooler's own role may call it...
        own = pooler.execute("SELECT username, password FROM pgbouncer.get_auth('authenticator_shop')").fetchall()
        assert len(own) == 1 and own[0][0] == "authenticator_shop" and own[0][1].startswith("SCRAM-SHA-256$")
        for stranger in ("authenticator_desk", "owner_crm", "postgres", "nextmavens_layer", "pgbouncer", "nobody"):
            assert pooler.execute("SELECT * FROM pgbouncer.get_auth(%s)", (stranger,)).fetchall() == [], stranger
    # ...and nobody else may.
    with applied.login("owner_shop", "shop", "shop") as owner, pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute("SELECT * FROM pgbouncer.get_auth('authenticator_shop')")


def _as_postgrest(conn: psycopg.Connection, role: str, claims: dict[str, str]) -> list[tuple]:
    """What PostgREST does per request: one transaction, SET LOCAL ROLE, the claims as a setting."""
    with conn.transaction():
        conn.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(psycopg.sql.Identifier(role)))
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        return conn.execute("SELECT id, body, auth.uid()::text, auth.role() FROM notes ORDER BY id").fetchall()


def test_postgrest_roles_see_what_policies_allow(applied: Stage) -> None:
    with applied.login("authenticator_shop", "shop", "shop") as conn:
        assert _as_postgrest(conn, "anon", {"role": "anon"}) == []
        mine = _as_postgrest(
            conn, "authenticated", {"role": "authenticated", "sub": "11111111-1111-1111-1111-111111111111"}
        )
        assert mine == [(1, "mine", "11111111-1111-1111-1111-111111111111", "authenticated")]
        everything = _as_postgrest(conn, "service_role", {"role": "service_role"})
        assert [row[0] for row in everything] == [1, 2]


def test_authenticator_cannot_become_another_projects_owner(applied: Stage) -> None:
    with (
        applied.login("authenticator_shop", "shop", "shop") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SET ROLE owner_desk")


def test_keys_verify_with_their_own_project_secret_only(applied: Stage) -> None:
    with applied.engine().secrets() as store:
        secrets = {ref: store.project_secrets(ref) for ref in REFS}
    for own, other in itertools.permutations(REFS, 2):
        mine, theirs = secrets[own], secrets[other]
        assert mine is not None and theirs is not None
        assert verify_api_key(mine.keys.anon, mine.jwt_secret)["role"] == "anon"
        assert verify_api_key(mine.keys.service_role, mine.jwt_secret)["role"] == "service_role"
        with pytest.raises(jwt.InvalidSignatureError):
            verify_api_key(mine.keys.service_role, theirs.jwt_secret)
    claims = jwt.decode(secrets["shop"].keys.anon, options={"verify_signature": False})  # type: ignore[union-attr]
    assert set(claims) == {"role", "iss", "iat", "exp"}
    assert len(secrets["shop"].jwt_secret.encode()) >= 32  # type: ignore[union-attr]


def test_supabase_demo_secret_is_never_accepted() -> None:
    forged = jwt.encode({"role": "service_role", "iat": 1, "exp": 2**40}, SUPABASE_DEMO_JWT_SECRET, algorithm="HS256")
    with pytest.raises(ForbiddenKey):
        verify_api_key(forged, SUPABASE_DEMO_JWT_SECRET)


def _database_facts(stage: Stage, name: str) -> list[tuple]:
    return stage.sql(
        "SELECT pg_get_userbyid(datdba), datacl::text[], datallowconn FROM pg_database WHERE datname = %s", (name,)
    )


def test_a_ref_naming_a_database_or_role_the_platform_did_not_create_is_refused(stage: Stage) -> None:
    """Evolution's database, an operator's, a role made by hand: never taken over by a manifest."""
    stage.sql("CREATE ROLE someone LOGIN PASSWORD 'x'")
    stage.sql("CREATE DATABASE ledger OWNER someone")
    stage.sql("CREATE ROLE authenticator_crm LOGIN")
    write_project(stage.projects, "acme", "ledger")
    write_project(stage.projects, "acme", "crm")
    before = _database_facts(stage, "ledger")
    plan = stage.plan()  # first use: creates the control database, whose migrations add the service's role
    roles_before = stage.sql("SELECT rolname FROM pg_roles ORDER BY 1")
    crm, ledger = plan.errors
    assert crm.startswith("projects/acme/crm.yaml: role 'authenticator_crm' already exists on this server")
    assert ledger.startswith("projects/acme/ledger.yaml: database 'ledger' already exists on this server")
    result = stage.cli("apply", "--yes")
    assert result.returncode == 1
    assert "the platform never takes over what it did not create" in result.stderr
    assert _database_facts(stage, "ledger") == before
    assert stage.sql("SELECT rolname FROM pg_roles ORDER BY 1") == roles_before
    assert stage.sql("SELECT ref FROM projects", dbname="nextmavens") == []
    # A project the platform did create (and recorded) is its own on every later apply.
    (stage.projects / "acme" / "ledger.yaml").unlink()
    (stage.projects / "acme" / "crm.yaml").unlink()
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    assert stage.plan().empty


def test_a_new_database_admits_nobody_until_its_grants_are_in_place(stage: Stage) -> None:
    write_project(stage.projects, "globex", "desk")
    stage.apply()
    write_project(stage.projects, "acme", "shop")
    attempts: list[str] = []

    def intrude(change: Change) -> None:
        # Just before the first grant change on the new database: it exists, PUBLIC still has CONNECT.
        if change.kind == "grant" and change.target == "shop" and not attempts:
            try:
                intruder = stage.login("owner_desk", "shop", "desk")
            except psycopg.OperationalError as exc:
                attempts.append(str(exc))
                return
            intruder.close()
            attempts.append("owner_desk connected to shop")

    result = stage.engine().apply(load_manifests(stage.projects), on_change=intrude)
    assert result is not None
    assert len(attempts) == 1 and "is not currently accepting connections" in attempts[0], attempts
    assert _database_facts(stage, "shop")[0][2] is True
    assert stage.plan().empty


HIJACK = """
CREATE FUNCTION public.name_eq(a name, b name) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        EXECUTE 'ALTER ROLE owner_shop SUPERUSER';
    END IF;
    RETURN a OPERATOR(pg_catalog.=) b;
END
$f$;
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.name_eq);
ALTER DATABASE shop SET search_path = public, pg_catalog;
"""


def test_the_layer_runs_no_operator_or_function_of_the_projects_own(stage: Stage) -> None:
    """The database's owner may set its search_path: the superuser layer session must not resolve names
    in the owner's schemas (an `=` of its own made the owner a superuser)."""
    write_project(stage.projects, "acme", "shop")
    stage.apply()
    with stage.login("owner_shop", "shop", "shop") as owner:
        owner.execute(HIJACK)
    write_project(stage.projects, "acme", "shop", database={"schemas": ["app"]})  # the layer runs again
    stage.apply()
    assert stage.sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'owner_shop'") == [(False,)]
    assert stage.plan().empty
