"""No tenant may take over the platform's own host names (served with the platform's certificates): not as an app
domain, a custom domain or a preview host; not a name under api_domain; not a parent of a platform name (owning
`X` would let a preview become `platform.X`). And an app's nginx file never repeats a name the edge serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.apps.previews import platform_conflicts
from nextmavens.apps.upstream import edge_server_names, render_app_nginx
from nextmavens.edge.inputs import hostname_problems, platform_name_problem, platform_names
from nextmavens.manifest.loader import load_manifests
from tests.support.edgesamples import settings
from tests.support.projects import write_project

# Production's shape (group_data/production.py): api., studio. and platform. below one domain; Studio for
# projects on its own name here so each field is seen.
EDGE = settings(
    api_domain="api.example.test",
    studio_domain="studio.example.test",
    platform_domain="platform.example.test",
    project_studio_domain="projects.example.test",
    pooler_host="db.example.test",
)
FIELDS = {
    "api.example.test": "api_domain",
    "studio.example.test": "studio_domain",
    "platform.example.test": "platform_domain (platform_service_domain)",
    "projects.example.test": "project_studio_domain",
    "db.example.test": "pooler_host",
}


def problems_for(tmp_path: Path, **fields: object) -> list[str]:
    write_project(tmp_path, "acme", "shop", **fields)
    manifest = load_manifests(tmp_path).by_key("acme/shop").manifest  # type: ignore[union-attr]
    return hostname_problems(EDGE, [manifest])


def test_the_platform_names_are_every_field_that_names_one() -> None:
    assert platform_names(EDGE) == FIELDS


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_platform_name_is_refused_naming_its_field(name: str) -> None:
    assert platform_name_problem(EDGE, name) == f"host name {name!r} is the platform's own ({FIELDS[name]})"
    assert platform_name_problem(EDGE, name.upper() + ".") is not None


@pytest.mark.parametrize("name", ["shop.api.example.test", "a.b.api.example.test"])
def test_a_name_under_the_api_domain_is_a_project_api_host_and_refused(name: str) -> None:
    refused = platform_name_problem(EDGE, name)
    assert refused is not None and "under the API domain 'api.example.test' (api_domain)" in refused


@pytest.mark.parametrize("name", ["example.test", "test"])
def test_a_parent_of_a_platform_name_is_refused(name: str) -> None:
    refused = platform_name_problem(EDGE, name)
    assert refused is not None and "is a parent of the platform's" in refused


@pytest.mark.parametrize(
    "name", ["shop.example.test", "x.studio.example.test", "notexample.test", "api.example.test.x.test", "shop.test2"]
)
def test_siblings_and_look_alikes_stay_allowed(name: str) -> None:
    assert platform_name_problem(EDGE, name) is None


@pytest.mark.parametrize("name", [*sorted(FIELDS), "example.test", "shop.api.example.test"])
def test_an_app_domain_that_is_the_platforms_is_refused_by_the_edge_check(tmp_path: Path, name: str) -> None:
    problems = problems_for(tmp_path, apps=[{"name": "web", "domains": [name]}])
    assert any(p.startswith("shop: app 'web':") and repr(name) in p for p in problems), problems


@pytest.mark.parametrize("name", ["example.test", "shop.api.example.test", "db.example.test"])
def test_a_custom_domain_that_is_the_platforms_is_refused_by_the_edge_check(tmp_path: Path, name: str) -> None:
    problems = problems_for(tmp_path, domains=[name])
    assert any(p.startswith("shop:") and repr(name) in p for p in problems), problems


def test_ordinary_domains_pass_the_edge_check(tmp_path: Path) -> None:
    apps = [{"name": "web", "domains": ["www.acme.test"]}]
    assert problems_for(tmp_path, domains=["shop.example.test"], apps=apps) == []


@pytest.mark.parametrize(
    ("preview", "domain", "field"),
    [
        ("platform", "example.test", "platform_domain"),
        ("studio", "example.test", "studio_domain"),
        ("api", "example.test", "api_domain"),
        ("projects", "example.test", "project_studio_domain"),
        ("db", "example.test", "pooler_host"),
        ("shop", "api.example.test", "under the API domain"),
    ],
)
def test_a_preview_named_like_a_platform_name_is_refused(preview: str, domain: str, field: str) -> None:
    refused = platform_conflicts(EDGE, preview, ["www.acme.test", domain])
    assert len(refused) == 1 and refused[0].startswith(f"{preview}.{domain}: ") and field in refused[0]
    assert platform_conflicts(EDGE, preview, ["www.acme.test"]) == []


@pytest.mark.parametrize(("domains", "preview"), [(["platform.example.test"], None), (["example.test"], "platform")])
def test_no_app_server_block_is_rendered_for_a_platform_name(domains: list[str], preview: str | None) -> None:
    with pytest.raises(ValueError, match=r"\(platform_domain.*no server block written"):
        render_app_nginx(EDGE, "shop", "web", domains, 3000, 1, ["platform.example.test"], preview=preview)


def test_no_app_server_block_repeats_a_name_the_edge_serves() -> None:
    edge_conf = (
        "server {\n    server_name shop.acme.example  www.shop.acme.example;\n    proxy_ssl_server_name on;\n}\n"
        "server { server_name _; }\n"
    )
    names = edge_server_names(edge_conf)
    assert names == {"shop.acme.example", "www.shop.acme.example", "_"}
    with pytest.raises(ValueError, match="'www.shop.acme.example' is served by the edge"):
        render_app_nginx(EDGE, "shop", "web", ["www.shop.acme.example"], 3000, 1, edge_names=names)
    text = render_app_nginx(EDGE, "shop", "web", ["www.acme.test"], 3000, 1, edge_names=names)
    assert "server_name www.acme.test;" in text
