"""The manifest's `email` section: addresses and names checked, a sending domain and each inbound address owned by
one project across all files (file:line errors), the JSON Schema knows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.manifest.loader import ManifestErrors, load_manifests
from nextmavens.manifest.schema import schema_documents
from tests.support.projects import write_project

SHOP = {"from_domain": "mail.shop.example", "from_name": "Shop", "inbound_addresses": ["help@shop.example"]}


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_manifests(root)
    return [str(e) for e in caught.value.errors]


def test_email_is_off_unless_declared_and_loads_when_declared(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "plain")
    write_project(tmp_path, "acme", "shop", email={**SHOP, "reply_to": "owner@shop.example"})
    loaded = load_manifests(tmp_path)
    plain, shop = loaded.by_ref("plain"), loaded.by_ref("shop")
    assert plain is not None and plain.manifest.email is None
    assert shop is not None and shop.manifest.email is not None
    assert shop.manifest.email.inbound_addresses == ["help@shop.example"]
    assert shop.manifest.email.reply_to == "owner@shop.example"
    assert shop.manifest.email.send_per_minute == 60  # the safe default send budget


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("reply_to", "Owner@shop.example", "not an email address"),
        ("reply_to", "owner@localhost", "not a valid host name"),
        ("reply_to", "a..b@shop.example", "not an email address"),
        ("reply_to", "a@b@shop.example", "not an email address"),
        ("reply_to", "owner@shop.example\n", "not a valid host name"),
        ("from_domain", "Mail.shop.example", "must be lowercase"),
        ("from_name", "Shop <evil@x.example>", "From header"),
        ("from_name", "Shop\u202e", "control or invisible"),
        ("send_per_minute", 0, "greater than or equal to 1"),
        ("send_per_minute", 6001, "less than or equal to 6000"),
        ("send_per_minute", "fast", "valid integer"),
    ],
)
def test_bad_values_name_file_line_and_field(tmp_path: Path, field: str, value: object, words: str) -> None:
    write_project(tmp_path, "acme", "shop", email={**SHOP, field: value})
    [error] = errors_of(tmp_path)
    assert error.startswith(f"{tmp_path.name}/acme/shop.yaml:")
    assert f": email.{field}: " in error and words in error


def test_an_inbound_address_listed_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop", email={**SHOP, "inbound_addresses": ["a@shop.example", "a@shop.example"]})
    [error] = errors_of(tmp_path)
    assert "email.inbound_addresses: inbound address 'a@shop.example' is listed twice" in error


def test_a_sending_domain_and_an_inbound_address_belong_to_one_project(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop", email=SHOP)
    other = {
        "from_domain": "mail.shop.example",
        "from_name": "Desk",
        "inbound_addresses": ["x@desk.example", "help@shop.example"],
    }
    write_project(tmp_path, "globex", "desk", email=other)
    errors = errors_of(tmp_path)
    root = tmp_path.name
    assert errors == [
        f"{root}/globex/desk.yaml:6: email.from_domain: from_domain 'mail.shop.example' is already used by "
        f"{root}/acme/shop.yaml; a domain sends for one project",
        f"{root}/globex/desk.yaml:10: email.inbound_addresses[1]: inbound address 'help@shop.example' is already "
        f"listed by {root}/acme/shop.yaml",
    ]


def test_nothing_is_loaded_when_one_file_claims_anothers_address(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop", email=SHOP)
    claim = {"from_domain": "desk.example", "from_name": "Desk", "inbound_addresses": ["help@shop.example"]}
    write_project(tmp_path, "globex", "desk", email=claim)
    with pytest.raises(ManifestErrors):
        load_manifests(tmp_path)


def test_the_json_schema_describes_email() -> None:
    import json

    schema = json.loads(schema_documents()["project.schema.json"])
    email = schema["$defs"]["Email"]
    assert set(email["properties"]) == {"from_domain", "from_name", "reply_to", "inbound_addresses", "send_per_minute"}
    assert set(email["required"]) == {"from_domain", "from_name"}
    assert email["additionalProperties"] is False


def test_media_offload_is_off_unless_declared_and_stays_inside_the_folder(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop", media_offload={"paths": ["uploads/**/*.jpg"], "older_than_days": 30})
    write_project(tmp_path, "acme", "plain")
    loaded = load_manifests(tmp_path)
    shop, plain = loaded.by_ref("shop"), loaded.by_ref("plain")
    assert shop is not None and shop.manifest.media_offload is not None and plain is not None
    assert plain.manifest.media_offload is None
    write_project(tmp_path, "acme", "shop", media_offload={"paths": ["../etc/*"], "older_than_days": 30})
    [error] = errors_of(tmp_path)
    assert "media_offload.paths: offload path '../etc/*' must stay inside the storage folder" in error
    write_project(tmp_path, "acme", "shop", media_offload={"paths": [], "older_than_days": 0})
    assert len(errors_of(tmp_path)) == 2


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ({"schema": "pg_catalog", "table": "pg_class", "column": "relname"}, "PostgreSQL's own"),
        ({"schema": "information_schema", "table": "t", "column": "c"}, "PostgreSQL's own"),
        ({"schema": "public", "table": 'photos"; DROP TABLE x; --', "column": "path"}, "should match pattern"),
        ({"schema": "public", "table": "Photos", "column": "path"}, "should match pattern"),
        ({"schema": "public", "table": "photos"}, "column: required key is missing"),
        ({"schema": "public", "table": "photos", "column": "path", "where": "1=1"}, "where: unknown key"),
    ],
)
def test_offload_references_are_plain_names_of_the_projects_own_tables(
    tmp_path: Path, reference: dict[str, str], words: str
) -> None:
    policy = {"paths": ["*.jpg"], "older_than_days": 30, "references": [reference]}
    write_project(tmp_path, "acme", "shop", media_offload=policy)
    [error] = errors_of(tmp_path)
    assert error.startswith(f"{tmp_path.name}/acme/shop.yaml:") and "media_offload.references[0]." in error
    assert words in error


def test_offload_references_load(tmp_path: Path) -> None:
    reference = {"schema": "public", "table": "photos", "column": "path"}
    policy = {"paths": ["*.jpg"], "older_than_days": 3, "references": [reference]}
    write_project(tmp_path, "acme", "shop", media_offload=policy)
    shop = load_manifests(tmp_path).by_ref("shop")
    assert shop is not None and shop.manifest.media_offload is not None
    [loaded] = shop.manifest.media_offload.references
    assert (loaded.schema_, loaded.table, loaded.column) == ("public", "photos", "path")
