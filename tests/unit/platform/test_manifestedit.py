"""Manifest text the service writes: built from values, checked by the models, state edited in place, members
replaced whole with at least one owner kept."""

from __future__ import annotations

import pytest
import yaml

from nextmavens.manifest.models import OrgManifest, ProjectManifest
from nextmavens.platform.manifestedit import (
    NO_OWNER,
    ORG_SCHEMA_HEADER,
    document_problems,
    members_problems,
    org_values,
    project_document,
    render_document,
    with_members,
    with_state,
)


def test_a_new_document_round_trips_through_the_model() -> None:
    document = project_document("shop", 'Shop: "quoted"\n# not a comment', "https://shop.example", [], True)
    assert document_problems(document) == ["name: must not contain control or invisible characters (found U+000A)"]
    document = project_document("shop", "Shop: 'x' # y {z}", "https://shop.example", ["https://shop.example/cb"], True)
    assert document_problems(document) == []
    text = render_document(document)
    loaded = ProjectManifest.model_validate(yaml.safe_load(text))
    assert loaded.name == "Shop: 'x' # y {z}"
    assert loaded.auth.redirect_urls == ["https://shop.example/cb"]
    assert loaded.auth.disable_signup is True
    assert loaded.state == "active"


def test_problems_name_the_request_fields() -> None:
    document = project_document("Bad_Ref", "", "ftp://x", ["https://a.example/,b"], False)
    problems = document_problems(document)
    assert any(p.startswith("ref: 'Bad_Ref' must be a lowercase slug") for p in problems)
    assert any(p.startswith("name: ") for p in problems)
    assert any(p.startswith("site_url: must be an http(s) URL") for p in problems)
    assert any(p.startswith("redirect_urls[0]: ") and "','" in p for p in problems)


def test_state_line_is_rewritten_in_place_keeping_comments() -> None:
    text = "# mine\nref: shop\nname: Shop  # the name\nstate: active  # on\nauth:\n  site_url: https://s.example\n"
    changed = with_state(text, "suspended")
    assert changed == text.replace("state: active  # on", "state: suspended")
    assert with_state(changed, "active").count("state: active") == 1


def test_state_is_added_when_absent_and_dumped_when_written_otherwise() -> None:
    text = "ref: shop\nname: Shop\nauth:\n  site_url: https://s.example"
    assert yaml.safe_load(with_state(text, "suspended"))["state"] == "suspended"
    flow = "{ref: shop, name: Shop, state: active, auth: {site_url: 'https://s.example'}}\n"
    assert yaml.safe_load(with_state(flow, "suspended"))["state"] == "suspended"
    nested = "ref: shop\nname: Shop\nauth:\n  site_url: https://s.example\n  state: x\n"
    assert yaml.safe_load(with_state(nested, "suspended"))["auth"]["state"] == "x"


def test_only_active_and_suspended() -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        with_state("ref: shop\n", "absent")


ORG_TEXT = "# ours\nname: 'Acme: \"the\" org'\nmembers:\n  - email: ana@acme.example\n    role: owner\n"


def test_members_replace_the_list_and_keep_the_other_values() -> None:
    values = org_values(ORG_TEXT)
    members = [
        {"email": "ana@acme.example", "role": "admin"},
        {"email": "bo+x@acme.example", "role": "owner"},
        {"email": "cy@acme.example", "role": "developer"},
    ]
    document = with_members(values, members)
    assert members_problems(document) == []
    text = render_document(document, ORG_SCHEMA_HEADER)
    assert text.startswith(ORG_SCHEMA_HEADER)
    loaded = OrgManifest.model_validate(yaml.safe_load(text))
    assert loaded.name == 'Acme: "the" org'
    assert [(m.email, m.role) for m in loaded.members] == [(m["email"], m["role"]) for m in members]
    assert with_members(values, [{"email": "ana@acme.example", "role": "owner"}]) == values  # nothing to change


def test_members_are_refused_field_by_field() -> None:
    values = org_values(ORG_TEXT)
    invalid = with_members(values, [{"email": "ana@acme.example", "role": "king"}, {"email": "no at", "role": "owner"}])
    problems = members_problems(invalid)
    assert problems[0].startswith("members[0].role: Input should be 'owner', 'admin' or 'developer'")
    assert problems[1].startswith("members[1].email: ")
    repeated = with_members(
        values, [{"email": "ana@acme.example", "role": "owner"}, {"email": "Ana@Acme.example", "role": "developer"}]
    )
    assert len(members_problems(repeated)) == 1 and "members: " in members_problems(repeated)[0]
    assert "ana@acme.example" in members_problems(repeated)[0].lower()


def test_an_org_keeps_at_least_one_owner() -> None:
    values = org_values(ORG_TEXT)
    assert members_problems(with_members(values, [])) == [NO_OWNER]
    assert members_problems(with_members(values, [{"email": "ana@acme.example", "role": "admin"}])) == [NO_OWNER]
    # The owner may step down while another owner remains.
    handed_over = [{"email": "ana@acme.example", "role": "developer"}, {"email": "bo@acme.example", "role": "owner"}]
    assert members_problems(with_members(values, handed_over)) == []


def test_an_org_file_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="mapping"):
        org_values("- a\n- b\n")
