"""Rendered Kong config: golden file, isolation between every pair of projects, validation, hostile input."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from nextmavens.edge.inputs import EdgeInputError, project_hostnames
from nextmavens.edge.kong import AUTH_OPEN_PATHS, KongConfig, kong_json, render_kong
from tests.support.edgesamples import project, sample_projects, settings
from tests.support.kongroutes import consumer_with_key, route_admissions

GOLDEN = Path(__file__).parent / "golden" / "kong.json"
OPEN_PATHS = {f"/auth/v1{p}" for p in AUTH_OPEN_PATHS.values()}


def rendered_document(projects=None) -> dict:
    text = kong_json(render_kong(settings(), projects or sample_projects()))
    return json.loads(text)


def test_golden_kong_config():
    text = kong_json(render_kong(settings(), sample_projects()))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_render_is_deterministic_and_order_independent():
    projects = sample_projects()
    assert kong_json(render_kong(settings(), projects)) == kong_json(render_kong(settings(), projects[::-1]))


def test_no_consumer_of_one_project_is_admitted_by_any_route_of_another():
    """Computed from the rendered document only: which consumer holds a project's key, and which routes
    on the other project's host names let that consumer through."""
    projects = [p for p in sample_projects() if p.state != "absent"] + [project("extra", storage={"enabled": True})]
    document = rendered_document(projects)
    admissions = route_admissions(document)
    checked = 0
    for a, b in itertools.permutations(projects, 2):
        a_consumers = {
            consumer_with_key(document, key) for key in (a.secrets.keys.anon, a.secrets.keys.service_role)
        } - {None}
        b_hosts = set(project_hostnames(settings(), b))
        for admission in admissions:
            if not admission.hosts & b_hosts:
                continue
            assert admission.hosts <= b_hosts, f"{admission.route} mixes hosts of two projects"
            assert not (admission.admitted_consumers & a_consumers), (a.ref, b.ref, admission.route)
            if admission.open:
                assert set(admission.paths) <= OPEN_PATHS, f"{admission.route} is open beyond GoTrue's links"
            checked += 1
    assert checked > 50


def test_each_project_key_opens_its_own_protected_routes():
    projects = [p for p in sample_projects() if p.state == "active"]
    document = rendered_document(projects)
    for p in projects:
        consumer = consumer_with_key(document, p.secrets.keys.anon)
        assert consumer == f"anon_{p.ref}"
        own = [a for a in route_admissions(document) if a.hosts & set(project_hostnames(settings(), p))]
        protected = [a for a in own if not a.open and not a.terminated]
        assert protected and all(consumer in a.admitted_consumers for a in protected)


def test_suspended_project_has_no_consumers_and_answers_503():
    document = rendered_document()
    names = {c["username"] for c in document["consumers"]}
    assert "anon_helpdesk" not in names and "service_role_helpdesk" not in names
    (service,) = [s for s in document["services"] if "helpdesk" in s["name"]]
    assert service["plugins"] == [
        {
            "name": "request-termination",
            "config": {"status_code": 503, "message": "This project is suspended"},
        }
    ]
    assert service["routes"][0]["paths"] == ["/"]


def test_absent_project_is_not_rendered():
    assert "gone" not in kong_json(render_kong(settings(), sample_projects())).replace("gone.", "")


def test_rate_limits_per_consumer_local_policy():
    document = rendered_document()
    by_name = {c["username"]: c for c in document["consumers"]}
    (plugin,) = by_name["anon_shop"]["plugins"]
    assert plugin == {
        "name": "rate-limiting",
        "config": {
            "second": 20,
            "hour": 20000,
            "policy": "local",
            "limit_by": "consumer",
            "fault_tolerant": True,
        },
    }


def test_realtime_preserves_host_on_api_domain_and_uses_tenant_upstream_on_custom_domains():
    document = rendered_document()
    ws = next(s for s in document["services"] if s["name"] == "realtime-shop-ws")
    assert ws["url"] == "http://shop.realtime/socket"
    api_route, custom_route = ws["routes"]
    assert api_route["hosts"] == ["shop.api.example.test"] and api_route["preserve_host"] is True
    assert custom_route["hosts"] == ["api.shop.acme.test"] and custom_route["preserve_host"] is False
    upstream = next(u for u in document["upstreams"] if u["name"] == "shop.realtime")
    assert upstream["targets"] == [{"target": "realtime:4000"}]


def test_storage_only_when_enabled():
    names = {s["name"] for s in rendered_document()["services"]}
    assert "storage-shop" in names and "storage-crm" not in names


def test_model_rejects_route_allowing_unknown_group():
    document = rendered_document()
    document["services"][0]["plugins"] = [
        {"name": "key-auth", "config": {"key_names": ["apikey"]}},
        {"name": "acl", "config": {"allow": ["admin_nobody"]}},
    ]
    with pytest.raises(ValidationError, match="unknown groups"):
        KongConfig.model_validate(document)


def test_model_rejects_key_auth_without_acl_and_bad_plugin_config():
    document = rendered_document()
    document["services"][0]["plugins"] = [{"name": "key-auth", "config": {"key_names": ["apikey"]}}]
    with pytest.raises(ValidationError, match="key-auth and acl must come together"):
        KongConfig.model_validate(document)
    document = rendered_document()
    document["consumers"][0]["plugins"] = [{"name": "rate-limiting", "config": {"second": 0}}]
    with pytest.raises(ValidationError):
        KongConfig.model_validate(document)


def test_model_rejects_duplicate_key_without_echoing_it():
    document = rendered_document()
    key = document["consumers"][0]["keyauth_credentials"][0]["key"]
    document["consumers"][1]["keyauth_credentials"] = [{"key": key}]
    with pytest.raises(ValidationError) as info:
        KongConfig.model_validate(document)
    assert "share one key" in str(info.value)
    assert key not in str(info.value)


def test_model_rejects_unknown_fields_and_plugins():
    document = rendered_document()
    document["services"][0]["routes"][0]["regex_priority_typo"] = 1
    with pytest.raises(ValidationError):
        KongConfig.model_validate(document)
    document = rendered_document()
    document["services"][0]["plugins"].append({"name": "post-function", "config": {}})
    with pytest.raises(ValidationError):
        KongConfig.model_validate(document)


# ---------------------------------------------------------------- hostile input


def test_domain_claimed_by_two_projects_is_refused():
    projects = [project("one", domains=["same.acme.test"]), project("two", domains=["same.acme.test"])]
    with pytest.raises(EdgeInputError, match="already claimed by project 'one'"):
        render_kong(settings(), projects)


def test_custom_domain_equal_to_another_projects_api_host_is_refused():
    projects = [project("one"), project("two", domains=["one.api.example.test"])]
    with pytest.raises(EdgeInputError) as info:
        render_kong(settings(), projects)
    assert "already claimed" in str(info.value) and "under the API domain" in str(info.value)


def test_custom_domain_equal_to_studio_domain_is_refused():
    with pytest.raises(EdgeInputError, match="Studio"):
        render_kong(settings(), [project("one", domains=["studio.example.test"])])


@pytest.mark.parametrize("domain", ["*.acme.test", "203.0.113.7", "10.0.0.1"])
def test_wildcard_or_ip_custom_domain_is_refused_by_the_manifest(domain):
    with pytest.raises(ValidationError):
        project("one", domains=[domain])


@pytest.mark.parametrize("window", ["second", "minute", "hour"])
def test_rate_limit_of_zero_is_refused_by_the_manifest(window):
    with pytest.raises(ValidationError):
        project("one", api={"rate_limits": {"anon": {window: 0}}})


def test_duplicate_domain_across_manifests_is_refused_by_the_loader(tmp_path):
    from nextmavens.manifest.loader import ManifestErrors, load_manifests

    for ref in ("one", "two"):
        (tmp_path / "acme").mkdir(exist_ok=True)
        (tmp_path / "acme" / f"{ref}.yaml").write_text(
            f"ref: {ref}\nname: {ref}\nauth:\n  site_url: https://{ref}.test\ndomains:\n  - same.acme.test\n"
        )
    with pytest.raises(ManifestErrors, match="already claimed"):
        load_manifests(tmp_path)


def test_config_the_pinned_kong_would_refuse_is_never_emitted():
    document = render_kong(settings(), sample_projects()).document()
    assert document["_format_version"] == "2.1"  # Kong 2.8.1 accepts 1.1 and 2.1 only
    with pytest.raises(ValidationError):
        KongConfig.model_validate({**document, "_format_version": "3.0"})
    # acl's schema forbids a consumer (typedefs.no_consumer): Kong 2.8.1 would refuse the whole config.
    consumer = {**document["consumers"][0], "plugins": [{"name": "acl", "config": {"allow": ["anon_shop"]}}]}
    with pytest.raises(ValidationError, match="the pinned Kong would refuse this config"):
        KongConfig.model_validate({**document, "consumers": [consumer, *document["consumers"][1:]]})
