"""The planner and SQL builder for the whatsapp schema, with plain values: no server involved."""

from __future__ import annotations

from pathlib import Path

from nextmavens.engine import sqlgen
from nextmavens.engine.desired import desired_state
from nextmavens.engine.plan import make_plan
from nextmavens.manifest.loader import ManifestSet, load_manifests
from nextmavens.naming import WHATSAPP_FORWARD_SECRET
from tests.support.projects import write_project
from tests.unit.engine.test_plan import converged

SECRETS = {"whatsapp-token:main", "whatsapp-webhook-secret:main", WHATSAPP_FORWARD_SECRET}


def _load(root: Path, **fields: object) -> ManifestSet:
    write_project(root, "acme", "shop", **fields)
    return load_manifests(root)


def test_a_converged_project_with_instances_plans_nothing(tmp_path: Path) -> None:
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    state = converged(loaded)
    state.secret_names["shop"] |= SECRETS
    assert make_plan(desired_state(loaded), state).empty


def test_an_instance_declared_on_an_applied_project_creates_the_schema(tmp_path: Path) -> None:
    state = converged(_load(tmp_path))
    state.secret_names["shop"] |= SECRETS
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    [change] = make_plan(desired_state(loaded), state).changes
    assert (change.action, change.kind, change.target) == ("create", "layer", "shop")
    assert change.detail == "create whatsapp schema (tables whatsapp.messages and whatsapp.events)"


def test_a_new_database_gets_the_schema_with_its_layer(tmp_path: Path) -> None:
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    state = converged(loaded)
    del state.databases["shop"]
    [layer] = [c for c in make_plan(desired_state(loaded), state).changes if c.kind == "layer"]
    assert layer.detail.endswith("with the whatsapp schema (tables whatsapp.messages and whatsapp.events)")


def test_instances_removed_from_the_manifest_leave_the_schema_unmentioned(tmp_path: Path) -> None:
    state = converged(_load(tmp_path, whatsapp={"instances": [{"name": "main"}]}))
    plan = make_plan(desired_state(_load(tmp_path)), state)
    assert plan.empty and not plan.notices


def test_a_missing_policy_restores_the_schema(tmp_path: Path) -> None:
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    state = converged(loaded)
    state.secret_names["shop"] |= SECRETS
    state.dependencies[("shop", "pg_policy", "service_role", "r")] -= 1
    [change] = make_plan(desired_state(loaded), state).changes
    assert (change.action, change.detail) == (
        "update",
        "restore the whatsapp schema: row security policies for service_role: 1 of 2",
    )


def test_a_layer_repair_names_the_schema_too(tmp_path: Path) -> None:
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    state = converged(loaded)
    state.secret_names["shop"] |= SECRETS
    del state.dependencies[("shop", "pg_event_trigger", "nextmavens_layer", "o")]
    del state.dependencies[("shop", "pg_class", "owner_shop", "a")]
    [change] = make_plan(desired_state(loaded), state).changes
    assert change.detail == ("restore the Supabase layer: PostgREST reload event triggers: 0 of 2; the whatsapp schema")


def test_the_layer_sql_holds_the_schema_only_when_wanted(tmp_path: Path) -> None:
    without = desired_state(_load(tmp_path)).projects[0].layer
    assert not any("whatsapp" in s.as_string(None) for s in sqlgen.layer_statements(without))
    loaded = _load(tmp_path, whatsapp={"instances": [{"name": "main"}]})
    text = [s.as_string(None) for s in sqlgen.layer_statements(desired_state(loaded).projects[0].layer)]
    whatsapp = [s for s in text if "whatsapp" in s]
    # inside the layer role's part of the transaction, before it resets the role
    first, last = text.index(whatsapp[0]), text.index(whatsapp[-1])
    assert text[:first].count('SET LOCAL ROLE "nextmavens_layer"') == 1 and "RESET ROLE" not in text[:last]
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "whatsapp"."messages", "whatsapp"."events"' in "\n".join(text)
    assert any('FOR ALL TO "owner_shop" USING (true) WITH CHECK (true)' in s for s in whatsapp)
    assert not any(word in s for s in whatsapp for word in ("DROP", "TRUNCATE", "anon", "authenticated"))
