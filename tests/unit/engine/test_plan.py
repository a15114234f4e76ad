"""The planner and the SQL builder, with plain values: no server involved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nextmavens.engine import sqlgen
from nextmavens.engine.desired import LAYER_ROLE, LAYER_VERSION, desired_state, project_spec
from nextmavens.engine.observed import (
    PUBLIC,
    ControlProject,
    ObservedDatabase,
    ObservedExtension,
    ObservedRole,
    ObservedState,
)
from nextmavens.engine.plan import PHASES, applied_record, databases_to_inspect, make_plan
from nextmavens.manifest.loader import load_manifests
from tests.support.projects import write_project


@pytest.fixture
def manifests(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_project(tmp_path / "projects", "acme", "my-shop", database={"extensions": ["pgcrypto"]})
    return load_manifests(tmp_path / "projects")


def converged(manifests) -> ObservedState:  # type: ignore[no-untyped-def]
    """What a cluster looks like right after a successful apply of `manifests`."""
    desired = desired_state(manifests)
    state = ObservedState(available_extensions={"pgcrypto", "uuid-ossp"})
    for role in desired.cluster_roles:
        state.roles[role.name] = ObservedRole(
            role.name,
            role.login,
            role.inherit,
            role.bypassrls,
            role.superuser,
            f"verifier-{role.name}" if role.has_password else None,
        )
        state.role_settings[role.name] = dict(role.settings)
        if role.has_password:
            state.expected_verifiers[role.name] = f"verifier-{role.name}"
    for project in desired.projects:
        for role in project.roles:
            state.roles[role.name] = ObservedRole(
                role.name, role.login, role.inherit, role.bypassrls, False, f"verifier-{role.name}"
            )
            state.expected_verifiers[role.name] = f"verifier-{role.name}"
            state.role_settings[role.name] = dict(role.settings)
            state.memberships.setdefault(role.name, set()).update(role.member_of)
        db = project.database
        acl = {(db.owner, p) for p in ("CONNECT", "CREATE", "TEMPORARY")} | {(r, "CONNECT") for r in db.connect_roles}
        state.databases[db.name] = ObservedDatabase(db.name, db.owner, db.connection_limit, frozenset(acl))
        state.database_settings[db.name] = dict(db.settings)
        for (catalog, role, deptype), count in project.layer.expected_dependencies().items():
            state.dependencies[(db.name, catalog, role, deptype)] = count
        state.secret_names[project.ref] = {"jwt_secret"} | {f"password:{r.name}" for r in project.roles}
        state.control_projects[project.ref] = dataclasses.replace(applied_record(project), keys_issued_at=1)
    for org in desired.orgs:
        state.control_orgs[org.slug] = (org.name, org.members)
    return state


def test_a_converged_cluster_plans_nothing(manifests) -> None:  # type: ignore[no-untyped-def]
    assert make_plan(desired_state(manifests), converged(manifests)).empty


def test_hyphenated_refs_become_underscored_postgres_names(manifests) -> None:  # type: ignore[no-untyped-def]
    spec = project_spec(manifests.projects[0])
    assert spec.database.name == "my_shop"
    assert [r.name for r in spec.roles] == [
        "owner_my_shop",
        "authenticator_my_shop",
        "auth_admin_my_shop",
        "storage_admin_my_shop",
        "readonly_my_shop",
    ]
    assert spec.names.realtime_slot == "realtime_rls_my_shop"


def test_an_empty_cluster_plans_everything_in_phase_order(manifests) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(desired_state(manifests), ObservedState(available_extensions={"pgcrypto"}))
    project_kinds = [c.kind for c in plan.changes if c.project == "acme/my-shop"]
    assert project_kinds == sorted(project_kinds, key=PHASES.index)
    # The record that the names are the project's comes before anything is created with them; the new
    # database opens only after its grants.
    assert project_kinds[:2] == ["claim", "secrets"] and project_kinds[-1] == "record"
    assert project_kinds.index("grant") < project_kinds.index("open") < project_kinds.index("layer")
    cluster = [c.target for c in plan.changes if c.project == "cluster" and c.kind == "role"]
    assert cluster == ["postgres", "anon", "authenticated", "service_role", "pgbouncer", "nextmavens_layer"]
    assert ("grant", "REVOKE CONNECT, TEMPORARY ON DATABASE my_shop FROM PUBLIC") in [
        (c.kind, c.detail) for c in plan.changes
    ]


def test_an_existing_postgres_role_is_never_altered(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    state.roles["postgres"] = ObservedRole("postgres", True, True, True, True, "whatever")
    assert make_plan(desired_state(manifests), state).empty


def test_extra_database_grants_are_revoked(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    db = state.databases["my_shop"]
    state.databases["my_shop"] = ObservedDatabase(
        db.name, db.owner, db.connection_limit, db.acl | {("owner_other", "CONNECT"), (PUBLIC, "TEMPORARY")}
    )
    details = sorted(c.detail for c in make_plan(desired_state(manifests), state).changes)
    assert details == [
        "REVOKE CONNECT ON DATABASE my_shop FROM owner_other",
        "REVOKE TEMPORARY ON DATABASE my_shop FROM PUBLIC",
    ]


def test_a_missing_dependency_is_named_in_the_layer_change(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    del state.dependencies[("my_shop", "pg_event_trigger", "nextmavens_layer", "o")]
    [change] = make_plan(desired_state(manifests), state).changes
    assert (change.kind, change.action) == ("layer", "update")
    assert change.detail == "restore the Supabase layer: PostgREST reload event triggers: 0 of 2"


def test_more_than_expected_is_not_drift(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    key = ("my_shop", "pg_namespace", "anon", "a")
    state.dependencies[key] += 3  # the project granted anon its own schemas
    assert make_plan(desired_state(manifests), state).empty


def test_a_missing_extension_on_the_server_is_a_plan_error(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    state.available_extensions = {"uuid-ossp"}
    plan = make_plan(desired_state(manifests), state)
    assert plan.errors == (
        "projects/acme/my-shop.yaml: extension(s) pgcrypto are not installed on this PostgreSQL server",
    )
    assert not [c for c in plan.changes if c.project == "acme/my-shop"]


def test_a_database_or_role_not_recorded_as_the_projects_is_an_error(manifests) -> None:  # type: ignore[no-untyped-def]
    desired = desired_state(manifests)
    for record in ("missing", "destroyed"):
        state = ObservedState(available_extensions={"pgcrypto"})
        if record == "destroyed":
            state.control_projects["my-shop"] = ControlProject(
                "my-shop", "acme", "x", "active", None, None, LAYER_VERSION, True
            )
        state.databases["my_shop"] = ObservedDatabase("my_shop", "someone", -1, frozenset())
        state.roles["auth_admin_my_shop"] = ObservedRole("auth_admin_my_shop", True, True, False, False, None)
        plan = make_plan(desired, state)
        assert plan.errors == (
            "projects/acme/my-shop.yaml: database 'my_shop' and role 'auth_admin_my_shop' already exist on this "
            "server, but the control database does not record them as project acme/my-shop's; the platform never "
            "takes over what it did not create. Choose another ref, or (if they are left over and their data is "
            "saved) drop them first",
        )
        assert not [c for c in plan.changes if c.project == "acme/my-shop"]


def test_objects_of_a_recorded_project_are_its_own(manifests) -> None:  # type: ignore[no-untyped-def]
    """A first apply killed after its claim left a role behind: the next one completes the project."""
    state = ObservedState(available_extensions={"pgcrypto"})
    state.control_projects["my-shop"] = ControlProject(
        "my-shop", "acme", "Project my-shop", "active", None, None, 0, False
    )
    state.roles["owner_my_shop"] = ObservedRole("owner_my_shop", True, True, False, False, None)
    plan = make_plan(desired_state(manifests), state)
    assert plan.errors == ()
    kinds = [c.kind for c in plan.changes if c.project == "acme/my-shop"]
    assert "claim" not in kinds and "database" in kinds


def test_a_reserved_ref_is_refused_by_the_planner(manifests) -> None:  # type: ignore[no-untyped-def]
    desired = desired_state(manifests)
    for ref in ("nextmavens", "evolution", "template1", "supabase-admin", "authenticator"):
        project = dataclasses.replace(desired.projects[0], ref=ref)
        plan = make_plan(dataclasses.replace(desired, projects=(project,)), ObservedState())
        assert plan.errors == (
            f"projects/acme/my-shop.yaml: ref {ref!r} is reserved for PostgreSQL or the platform's own services",
        )
        assert not [c for c in plan.changes if c.project == "acme/my-shop"]


def test_a_database_left_closed_is_opened_after_its_grants(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    db = state.databases["my_shop"]
    state.databases["my_shop"] = dataclasses.replace(db, allow_connections=False)
    [change] = make_plan(desired_state(manifests), state).changes
    assert (change.kind, change.target) == ("open", "my_shop")
    assert sqlgen.open_database("my_shop").as_string(None) == 'ALTER DATABASE "my_shop" WITH ALLOW_CONNECTIONS true'
    spec = desired_state(manifests).projects[0].database
    assert sqlgen.create_database(spec).as_string(None).endswith("ALLOW_CONNECTIONS false")


def _with_extensions(state: ObservedState, *extensions: ObservedExtension) -> ObservedState:
    """`state` after reading my_shop's extensions by name (what observe_extensions fills in)."""
    state.extensions["my_shop"] = {e.name: e for e in extensions}
    return state


def _layer_owned(name: str, required_by: tuple[str, ...] = ()) -> ObservedExtension:
    return ObservedExtension(name, LAYER_ROLE, "extensions", required_by)


def test_a_converged_cluster_reads_no_database_by_name(manifests) -> None:  # type: ignore[no-untyped-def]
    assert databases_to_inspect(desired_state(manifests), converged(manifests)) == []


def test_a_swapped_extension_is_found_by_name_and_created(manifests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)  # applied with [pgcrypto]
    write_project(tmp_path / "projects", "acme", "my-shop", database={"extensions": ["pg_trgm"]})
    desired = desired_state(load_manifests(tmp_path / "projects"))
    state.available_extensions.add("pg_trgm")
    # The layer still owns one extension, as many as declared: only the recorded list tells them apart.
    assert databases_to_inspect(desired, state) == ["my_shop"]
    plan = make_plan(desired, _with_extensions(state, _layer_owned("pgcrypto")))
    assert plan.errors == ()
    assert [(c.kind, c.detail) for c in plan.changes] == [
        ("layer", "restore the Supabase layer: missing extension(s): pg_trgm"),
        ("record", "record the project in the control database"),
    ]
    [notice] = plan.notices
    assert notice.project == "acme/my-shop" and notice.detail.startswith(
        "extension(s) pgcrypto in database 'my_shop' are the platform's but not in database.extensions"
    )


def test_a_removed_extension_is_kept_with_a_notice_on_every_plan(manifests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    write_project(tmp_path / "projects", "acme", "my-shop", database={"extensions": []})
    desired = desired_state(load_manifests(tmp_path / "projects"))
    state = _with_extensions(state, _layer_owned("pgcrypto"))
    plan = make_plan(desired, state)
    assert [c.kind for c in plan.changes] == ["record"]  # nothing dropped
    assert [n.kind for n in plan.notices] == ["orphan"] and "pgcrypto" in plan.notices[0].detail
    # Once recorded, the layer still owns more than declared: the names are read again, the notice stays.
    state.control_projects["my-shop"] = dataclasses.replace(state.control_projects["my-shop"], extensions=())
    assert databases_to_inspect(desired, state) == ["my_shop"]
    plan = make_plan(desired, state)
    assert plan.empty and "pgcrypto" in plan.notices[0].detail


def test_an_extension_a_declared_one_required_is_not_reported_as_kept(manifests) -> None:  # type: ignore[no-untyped-def]
    state = _with_extensions(converged(manifests), _layer_owned("pgcrypto"), _layer_owned("uuid-ossp", ("pgcrypto",)))
    plan = make_plan(desired_state(manifests), state)
    assert plan.empty and plan.notices == ()


@pytest.mark.parametrize(
    ("owner", "schema"), [("owner_my_shop", "public"), ("postgres", "extensions"), (LAYER_ROLE, "public")]
)
def test_a_declared_extension_of_another_owner_or_schema_is_an_error_naming_it(manifests, owner, schema) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    # Someone else's copy: the layer owns none, so the names are read.
    state.dependencies[("my_shop", "pg_extension", LAYER_ROLE, "o")] = 0
    assert databases_to_inspect(desired_state(manifests), state) == ["my_shop"]
    state = _with_extensions(state, ObservedExtension("pgcrypto", owner, schema))
    plan = make_plan(desired_state(manifests), state)
    assert plan.changes == ()
    [error] = plan.errors
    assert error.startswith(
        f"projects/acme/my-shop.yaml: database.extensions: extension 'pgcrypto' already exists in database "
        f"'my_shop', owned by {owner} in schema {schema}. "
    )
    # Without that copy, a missing extension is ordinary drift that the layer step repairs.
    plan = make_plan(desired_state(manifests), _with_extensions(state))
    assert plan.errors == ()
    assert [(c.kind, c.detail) for c in plan.changes] == [
        ("layer", "restore the Supabase layer: missing extension(s): pgcrypto")
    ]


def test_sql_quotes_every_identifier_and_literal() -> None:
    hostile = 'x"; DROP ROLE postgres; --'
    assert sqlgen.grant_membership("anon", hostile).as_string(None) == 'GRANT "anon" TO "x""; DROP ROLE postgres; --"'
    assert sqlgen.set_role_setting("r", "search_path", "auth'; x").as_string(None) == (
        """ALTER ROLE "r" SET "search_path" = 'auth''; x'"""
    )
    assert sqlgen.revoke_database("db", PUBLIC).as_string(None) == 'REVOKE ALL ON DATABASE "db" FROM PUBLIC'
    assert sqlgen.revoke_database("db", "PUBLIC ").as_string(None) == 'REVOKE ALL ON DATABASE "db" FROM "PUBLIC "'


def test_plan_details_never_hold_a_verifier(manifests) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    state.roles["owner_my_shop"] = ObservedRole("owner_my_shop", True, True, False, False, "SCRAM-other")
    plan = make_plan(desired_state(manifests), state)
    text = repr(plan.as_json())
    assert "password differs" in text
    assert "SCRAM-other" not in text and "verifier-owner_my_shop" not in text


def test_org_membership_changes_are_recorded(manifests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = converged(manifests)
    (tmp_path / "projects" / "acme" / "org.yaml").write_text(
        "name: Acme\nmembers:\n  - {email: ana@acme.example, role: owner}\n"
    )
    changed = load_manifests(tmp_path / "projects")
    [change] = make_plan(desired_state(changed), state).changes
    assert (change.project, change.kind, change.detail) == (
        "acme",
        "org",
        "record organization 'Acme' with 1 member(s)",
    )


def test_the_audit_actor_comes_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from nextmavens.engine.session import EngineConfig

    config = EngineConfig(dsn="", master_key_path=Path("/nonexistent"))
    assert "@" in config.who()
    monkeypatch.setenv("NEXTMAVENS_ACTOR", "timer:reconcile")
    assert config.who() == "timer:reconcile"


def test_a_declared_whatsapp_instance_needs_its_secrets_generated_once(tmp_path: Path) -> None:
    write_project(tmp_path / "p", "acme", "shop", whatsapp={"instances": [{"name": "orders"}]})
    loaded = load_manifests(tmp_path / "p")
    state = converged(loaded)  # the project's own secrets, not the instance's
    changes = make_plan(desired_state(loaded), state).changes
    assert [(c.kind, c.target) for c in changes] == [("secrets", "shop")]
    assert changes[0].detail == (
        "generate missing secrets (stored encrypted); WhatsApp token and webhook secret for orders; "
        "the WhatsApp forwarding secret"
    )
    state.secret_names["shop"] |= {"whatsapp-token:orders", "whatsapp-webhook-secret:orders"}
    [change] = make_plan(desired_state(loaded), state).changes
    assert change.detail == "generate missing secrets (stored encrypted); the WhatsApp forwarding secret"
    state.secret_names["shop"].add("whatsapp-forward-secret")
    assert make_plan(desired_state(loaded), state).empty
