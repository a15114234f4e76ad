"""Manifest validation: every bad input is refused with file, line and field; good examples load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nextmavens.manifest.loader import ManifestErrors, load_manifests
from nextmavens.manifest.schema import schema_documents
from tests.support.projects import write_project, write_raw
from tests.support.repo import REPO


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    return tmp_path / "projects"


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_manifests(root)
    return [str(e) for e in caught.value.errors]


def test_the_shipped_examples_are_valid_and_span_two_orgs() -> None:
    manifests = load_manifests(REPO / "projects")
    assert len(manifests.projects) >= 3
    assert len({p.org for p in manifests.projects}) >= 2
    assert {p.manifest.state for p in manifests.projects} >= {"active", "suspended"}


def test_the_exported_json_schemas_are_up_to_date() -> None:
    for filename, text in schema_documents().items():
        assert (REPO / "schema" / filename).read_text() == text, f"run: nextmavens schema ({filename})"


def test_examples_point_editors_at_the_schema() -> None:
    for path in (REPO / "projects").glob("*/*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=../../schema/"), path


def test_unknown_key_names_file_line_and_field(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        "ref: shop\nname: Shop\nauth:\n  site_url: https://x.example\n"
        "database:\n  pooler:\n    size: 5\n    mdoe: session\n",
    )
    assert errors_of(projects) == [
        "projects/acme/shop.yaml:8: database.pooler.mdoe: unknown key "
        "(check the spelling; see schema/ for the allowed keys)"
    ]


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ("connection_limit: '40'", "database.connection_limit", "valid integer"),
        ("connection_limit: 40.5", "database.connection_limit", "valid integer"),
        ("connection_limit: true", "database.connection_limit", "valid integer"),
        ("connection_limit: 100000", "database.connection_limit", "less than or equal"),
    ],
)
def test_wrong_types_are_not_coerced(projects: Path, line: str, field: str, fragment: str) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f"ref: shop\nname: Shop\nauth:\n  site_url: https://x.example\ndatabase:\n  {line}\n",
    )
    [error] = errors_of(projects)
    assert error.startswith(f"projects/acme/shop.yaml:6: {field}: ")
    assert fragment in error


@pytest.mark.parametrize(
    "ref",
    [
        "shop'; DROP DATABASE postgres; --",
        'shop"',
        "shop;",
        "Shop",
        "shоp",  # Cyrillic о
        "ｓhop",  # fullwidth s
        "shop_1",
        "-shop",
        "shop-",
        "sh",
    ],
)
def test_hostile_refs_are_refused(projects: Path, ref: str) -> None:
    write_project(projects, "acme", "shop", ref=ref)
    errors = errors_of(projects)
    assert any(e.startswith("projects/acme/shop.yaml:1: ref: ") for e in errors), errors


@pytest.mark.parametrize(
    "ref",
    [
        "postgres",
        "template1",
        "nextmavens",
        "supabase-admin",
        "pg-stat",
        "anon",
        "authenticator",
        "pgbouncer",
        "service-role",
        "supabase",
    ],
)
def test_reserved_refs_are_refused(projects: Path, ref: str) -> None:
    write_project(projects, "acme", ref)
    errors = errors_of(projects)
    assert any("ref: " in e for e in errors), errors


def test_a_ref_too_long_once_prefixed_names_the_derived_identifier(projects: Path) -> None:
    ref = "a" * 50  # fits a DNS label, but storage_admin_ + 50 is 64 bytes
    write_project(projects, "acme", ref)
    errors = errors_of(projects)
    assert any("storage_admin_" + ref in e and "64 bytes" in e for e in errors), errors


def test_ref_must_match_the_file_name(projects: Path) -> None:
    write_project(projects, "acme", "shop", ref="store")
    assert errors_of(projects) == ["projects/acme/shop.yaml:1: ref: ref 'store' must match the file name 'shop'"]


def test_duplicate_refs_across_orgs_are_refused(projects: Path) -> None:
    write_project(projects, "acme", "shop")
    write_project(projects, "globex", "shop")
    errors = errors_of(projects)
    assert errors == [
        "projects/globex/shop.yaml:1: ref: ref 'shop' is already used by projects/acme/shop.yaml; refs are unique "
        "across all orgs"
    ]


def test_a_domain_claimed_twice_names_both_files(projects: Path) -> None:
    write_project(projects, "acme", "shop", domains=["api.acme.example"])
    write_project(projects, "globex", "desk", domains=["www.globex.example", "api.acme.example"])
    errors = errors_of(projects)
    assert len(errors) == 1
    assert errors[0].startswith("projects/globex/desk.yaml:")
    assert "domains[1]: domain 'api.acme.example' is already claimed by projects/acme/shop.yaml" in errors[0]


@pytest.mark.parametrize(
    "domain",
    [
        "*.acme.example",
        "10.0.0.1",
        "::1",
        "API.acme.example",
        "acme",
        "a..b",
        "xn--аpple.com",
        "-bad.example",
        "bad-.example",
    ],
)
def test_bad_custom_domains_are_refused(projects: Path, domain: str) -> None:
    write_project(projects, "acme", "shop", domains=[domain])
    assert any("domains[0]" in e for e in errors_of(projects))


def test_a_rate_limit_of_zero_is_refused(projects: Path) -> None:
    write_project(projects, "acme", "shop", api={"rate_limits": {"anon": {"second": 0}}})
    assert any("api.rate_limits.anon.second" in e and "greater than or equal to 1" in e for e in errors_of(projects))


@pytest.mark.parametrize("schema", ["auth", "pg_temp", "public", "app; drop", "App", "supabase_x", "whatsapp"])
def test_reserved_or_unsafe_schema_names_are_refused(projects: Path, schema: str) -> None:
    write_project(projects, "acme", "shop", database={"schemas": [schema]})
    assert any("database.schemas" in e for e in errors_of(projects))


def test_extensions_come_from_the_allowlist(projects: Path) -> None:
    write_project(projects, "acme", "shop", database={"extensions": ["pgcrypto", "plpython3u"]})
    assert any("database.extensions[1]" in e for e in errors_of(projects))


def test_duplicate_yaml_keys_are_refused_with_their_line(projects: Path) -> None:
    write_raw(projects, "acme", "shop.yaml", "ref: shop\nname: A\nname: B\nauth:\n  site_url: https://x.example\n")
    assert errors_of(projects) == ["projects/acme/shop.yaml:3: key 'name' appears twice"]


def test_yaml_syntax_errors_name_the_line(projects: Path) -> None:
    write_raw(projects, "acme", "shop.yaml", "ref: shop\nname: [unclosed\nauth: {}\n")
    [error] = errors_of(projects)
    assert error.startswith("projects/acme/shop.yaml:3: invalid YAML")


def test_org_file_members_are_validated(projects: Path) -> None:
    write_project(projects, "acme", "shop")
    write_raw(projects, "acme", "org.yaml", "name: Acme\nmembers:\n  - email: a@acme.example\n    role: boss\n")
    [error] = errors_of(projects)
    assert error.startswith("projects/acme/org.yaml:4: members[0].role: ")


def test_every_error_of_every_file_is_reported_at_once(projects: Path) -> None:
    write_project(projects, "acme", "shop", extra=1)
    write_project(projects, "acme", "crm", state="paused")
    write_project(projects, "Bad Org", "desk")
    errors = errors_of(projects)
    assert len(errors) == 3
    assert {e.split(":")[0] for e in errors} == {
        "projects/acme/shop.yaml",
        "projects/acme/crm.yaml",
        "projects/Bad Org",
    }


def test_json_schema_forbids_unknown_keys() -> None:
    project = json.loads(schema_documents()["project.schema.json"])
    assert project["additionalProperties"] is False
    assert "ref" in project["required"]
