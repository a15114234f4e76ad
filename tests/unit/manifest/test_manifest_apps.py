"""The manifest's `apps`: defaults, every refusal with file, line and field, cross-file domain checks, schema, and
memory admission counting each app's memory_mb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nextmavens.edge.memory import project_footprint
from nextmavens.manifest.loader import ManifestErrors, load_manifests
from nextmavens.manifest.models import App
from nextmavens.manifest.schema import schema_documents
from tests.support.projects import write_project, write_raw

HEAD = "ref: shop\nname: Shop\nauth:\n  site_url: https://x.example\n"


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_manifests(root)
    return [str(e) for e in caught.value.errors]


def test_an_app_gets_its_defaults(tmp_path: Path) -> None:
    write_raw(tmp_path, "acme", "shop.yaml", HEAD + "apps:\n  - name: web\n")
    (app,) = load_manifests(tmp_path).by_key("acme/shop").manifest.apps  # type: ignore[union-attr]
    assert (app.source, app.build, app.port, app.health_path, app.memory_mb, app.retain) == (
        "upload",
        "auto",
        3000,
        "/",
        256,
        3,
    )
    assert app.env == {} and app.secrets == [] and app.domains == []


def test_a_full_app_loads(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "acme",
        "shop",
        apps=[
            {
                "name": "web",
                "source": "https://git.example/acme/web.git#release/v2",
                "build": "dockerfile:deploy/Dockerfile",
                "port": 8080,
                "health_path": "/healthz",
                "env": {"MODE": "production", "GREETING": "hello world"},
                "secrets": ["STRIPE_KEY"],
                "domains": ["shop.acme.example"],
                "memory_mb": 512,
                "retain": 5,
            },
            {"name": "api", "source": "/srv/code/api", "build": "python"},
        ],
    )
    web, api = load_manifests(tmp_path).by_key("acme/shop").manifest.apps  # type: ignore[union-attr]
    assert web.build == "dockerfile:deploy/Dockerfile" and web.secrets == ["STRIPE_KEY"]
    assert api.source == "/srv/code/api"


@pytest.mark.parametrize(
    ("body", "line", "field", "fragment"),
    [
        ("  - name: Web\n", 6, "apps[0].name", "must be a lowercase slug"),
        ("  - name: web\n    build: rust\n", 7, "apps[0].build", "build must be one of"),
        ("  - name: web\n    build: dockerfile:../Dockerfile\n", 7, "apps[0].build", "must be relative"),
        ("  - name: web\n    build: dockerfile:/etc/passwd\n", 7, "apps[0].build", "must be relative"),
        ("  - name: web\n    source: ftp://x.example/r\n", 7, "apps[0].source", "source must be"),
        ("  - name: web\n    source: https://u:p@x.example/r.git\n", 7, "apps[0].source", "credentials"),
        ("  - name: web\n    source: 'https://x.example/r.git#-u'\n", 7, "apps[0].source", "git ref"),
        ("  - name: web\n    source: /srv/../etc\n", 7, "apps[0].source", "'..'"),
        ("  - name: web\n    source: relative/path\n", 7, "apps[0].source", "source must be"),
        ("  - name: web\n    port: 0\n", 7, "apps[0].port", "greater than or equal to 1"),
        ("  - name: web\n    port: '80'\n", 7, "apps[0].port", "valid integer"),
        ("  - name: web\n    health_path: healthz\n", 7, "apps[0].health_path", "must start with '/'"),
        ("  - name: web\n    health_path: '/a b'\n", 7, "apps[0].health_path", "must start with '/'"),
        ("  - name: web\n    env:\n      lower: x\n", 8, "apps[0].env.lower", "should match pattern"),
        ("  - name: web\n    env:\n      PORT: '1'\n", 7, "apps[0].env", "set by the platform"),
        ("  - name: web\n    env:\n      A: \"x\\ny\"\n", 8, "apps[0].env.A", "control or invisible"),
        ("  - name: web\n    env:\n      A: 1\n", 8, "apps[0].env.A", "valid string"),
        ("  - name: web\n    build: dockerfile:a/../../x\n", 7, "apps[0].build", "'..'"),
        ("  - name: web\n    secrets: [KEY, KEY]\n", 7, "apps[0].secrets", "listed twice"),
        ("  - name: web\n    secrets: [key]\n", 7, "apps[0].secrets[0]", "should match pattern"),
        ("  - name: web\n    env:\n      KEY: a\n    secrets: [KEY]\n", 6, "apps[0]", "either in env or in secrets"),
        ("  - name: web\n    domains: [A.example]\n", 7, "apps[0].domains[0]", "lowercase"),
        ("  - name: web\n    memory_mb: 16\n", 7, "apps[0].memory_mb", "greater than or equal to 32"),
        ("  - name: web\n    retain: 0\n", 7, "apps[0].retain", "greater than or equal to 1"),
        ("  - name: web\n    replicas: 2\n", 7, "apps[0].replicas", "unknown key"),
        ("  - name: web\n  - name: web\n", 5, "apps", "app 'web' is listed twice"),
        (
            "  - name: web\n    domains: [a.example]\n  - name: api\n    domains: [a.example]\n",
            5,
            "apps",
            "served by both app 'web' and app 'api'",
        ),
    ],
)
def test_bad_apps_are_refused_with_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, fragment: str
) -> None:
    write_raw(tmp_path / "projects", "acme", "shop.yaml", HEAD + "apps:\n" + body)
    (error,) = errors_of(tmp_path / "projects")
    assert error.startswith(f"projects/acme/shop.yaml:{line}: {field}: "), error
    assert fragment in error, error


def test_app_domains_are_unique_across_projects_and_project_domains(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    write_project(root, "acme", "shop", domains=["shop.acme.example"])
    write_project(root, "acme", "blog", apps=[{"name": "web", "domains": ["shop.acme.example", "blog.acme.example"]}])
    write_project(root, "beta", "news", apps=[{"name": "site", "domains": ["blog.acme.example"]}])
    errors = errors_of(root)
    assert len(errors) == 2, errors
    assert errors[0].startswith(
        "projects/acme/shop.yaml:6: domains[0]: domain 'shop.acme.example' is already claimed by "
        "projects/acme/blog.yaml (apps[0].domains[0])"
    ), errors
    assert errors[1].startswith(
        "projects/beta/news.yaml:8: apps[0].domains[0]: domain 'blog.acme.example' is already "
        "claimed by projects/acme/blog.yaml (apps[0].domains[1])"
    ), errors


def test_the_json_schema_describes_apps() -> None:
    schema = json.loads(schema_documents()["project.schema.json"])
    app = schema["$defs"]["App"]
    assert set(app["properties"]) == {
        "name",
        "source",
        "build",
        "port",
        "health_path",
        "env",
        "secrets",
        "domains",
        "memory_mb",
        "retain",
    }
    assert app["additionalProperties"] is False
    assert schema["properties"]["apps"]["items"] == {"$ref": "#/$defs/App"}


def test_memory_admission_counts_each_apps_memory(tmp_path: Path) -> None:
    write_project(tmp_path, "acme", "shop", apps=[{"name": "web", "memory_mb": 300}, {"name": "api"}])
    manifest = load_manifests(tmp_path).by_key("acme/shop").manifest  # type: ignore[union-attr]
    footprint = project_footprint(manifest)
    bare = project_footprint(manifest.model_copy(update={"apps": []}))
    assert footprint.total_mb == bare.total_mb + 300 + 256
    assert footprint.services["app:web"] == 300
    hinted = manifest.model_copy(update={"resources": manifest.resources.model_copy(update={"memory_mb": 100})})
    assert project_footprint(hinted).total_mb == 100 + 556


def test_an_app_model_is_strict() -> None:
    with pytest.raises(ValueError, match="port"):
        App.model_validate({"name": "web", "port": "80"})


def test_the_edge_refuses_app_domains_the_platform_owns(tmp_path: Path) -> None:
    from nextmavens.edge.inputs import hostname_problems
    from tests.support.edgesamples import settings

    edge = settings()
    write_project(
        tmp_path, "acme", "shop", apps=[{"name": "web", "domains": [edge.studio_domain, f"x.{edge.api_domain}"]}]
    )
    manifest = load_manifests(tmp_path).by_key("acme/shop").manifest  # type: ignore[union-attr]
    problems = hostname_problems(edge, [manifest])
    assert f"shop: app 'web': host name {edge.studio_domain!r} is already claimed by the platform (Studio)" in problems
    assert any("app 'web': domain" in p and "lies under the API domain" in p for p in problems), problems
