"""Build detection (first match wins, a Dockerfile always wins) and the Dockerfiles rendered for each kind."""

from __future__ import annotations

import json

import pytest

from nextmavens.apps.detect import DetectError, Source, detect
from nextmavens.apps.dockerfiles import render_dockerfile

IMAGES = {"node": "node:22-bookworm-slim", "python": "python:3.12-slim", "static": "nginx:1.27"}


def src(**texts: str) -> Source:
    files = {name.replace("__", "/").replace("_dot_", "."): text for name, text in texts.items()}
    return Source(names=frozenset(files), texts={k: v for k, v in files.items() if "/" not in k})


def package(**fields: object) -> str:
    return json.dumps({"name": "app", **fields})


def test_a_dockerfile_wins_over_everything() -> None:
    source = src(Dockerfile="FROM x", **{"package_dot_json": package(scripts={"start": "node s.js"})})
    plan = detect("auto", source)
    assert (plan.kind, plan.dockerfile) == ("dockerfile", "Dockerfile")
    assert "always wins" in plan.reason


def test_the_manifest_names_another_dockerfile() -> None:
    plan = detect("dockerfile:deploy/Dockerfile", Source(frozenset({"deploy/Dockerfile"})))
    assert plan.dockerfile == "deploy/Dockerfile"
    with pytest.raises(DetectError, match="has no deploy/Dockerfile"):
        detect("dockerfile:deploy/Dockerfile", Source(frozenset({"Dockerfile"})))
    with pytest.raises(DetectError, match="no Dockerfile at its root"):
        detect("dockerfile", Source(frozenset({"index.html"})))


def test_node_with_a_start_script() -> None:
    plan = detect("auto", src(**{"package_dot_json": package(scripts={"start": "node server.js"})}))
    assert (plan.kind, plan.start, plan.install) == ("node", ("node", "server.js"), "")
    other = detect("auto", src(**{"package_dot_json": package(scripts={"start": "tsx src/index.ts"})}))
    assert other.start == ("npm", "start")
    locked = Source(
        frozenset({"package.json", "package-lock.json"}),
        {"package.json": package(scripts={"start": "x"}, dependencies={"express": "4.21.2"})},
    )
    assert detect("auto", locked).install == "ci"


def test_nextjs_server_and_static_export() -> None:
    nxt = package(dependencies={"next": "15.0.0"}, scripts={"build": "next build"})
    assert detect("auto", src(**{"package_dot_json": nxt})).start == ("npx", "--no-install", "next", "start")
    export = src(**{"package_dot_json": nxt, "next_dot_config_dot_js": "module.exports = { output: 'export' }"})
    plan = detect("auto", export)
    assert (plan.kind, plan.root) == ("static", "out")
    text = render_dockerfile(plan, 3000, IMAGES)
    assert "FROM node:22-bookworm-slim AS build" in text and "COPY --from=build /app/out/ /srv/www/" in text


def test_python_frameworks_and_their_servers() -> None:
    fastapi = detect("auto", src(requirements_dot_txt="fastapi==0.115\nuvicorn[standard]\n", main_dot_py=""))
    assert fastapi.start == ("uvicorn", "main:app", "--host", "0.0.0.0", "--port", "$PORT")
    flask = detect("auto", src(requirements_dot_txt="Flask>=3\ngunicorn\n", app_dot_py=""))
    assert flask.start == ("gunicorn", "--bind", "0.0.0.0:$PORT", "app:app")
    django = Source(
        frozenset({"pyproject.toml", "manage.py", "site/wsgi.py"}),
        {"pyproject.toml": '[project]\ndependencies = ["django>=5", "gunicorn"]\n'},
    )
    assert detect("auto", django).start == ("gunicorn", "--bind", "0.0.0.0:$PORT", "site.wsgi")
    assert detect("auto", django).install == "project"


def test_python_without_its_production_server_is_refused() -> None:
    with pytest.raises(DetectError, match="add gunicorn"):
        detect("auto", src(requirements_dot_txt="flask\n", app_dot_py=""))
    with pytest.raises(DetectError, match="add uvicorn"):
        detect("auto", src(requirements_dot_txt="fastapi\n", main_dot_py=""))


def test_static_and_nothing() -> None:
    assert detect("auto", src(index_dot_html="<h1>")).root == "."
    assert detect("static", Source(frozenset({"public/index.html"}))).root == "public"
    with pytest.raises(DetectError, match="could not detect"):
        detect("auto", src(README_dot_md="hi"))
    with pytest.raises(DetectError, match="build is 'node'"):
        detect("node", src(index_dot_html="<h1>"))


def test_node_comes_before_python_and_static() -> None:
    both = src(
        **{"package_dot_json": package(scripts={"start": "x"})}, requirements_dot_txt="flask\n", index_dot_html=""
    )
    assert detect("auto", both).kind == "node"
    assert detect("python", src(requirements_dot_txt="flask\ngunicorn\n", app_dot_py="")).kind == "python"


def test_a_broken_package_json_is_named() -> None:
    with pytest.raises(DetectError, match="package.json is not valid JSON"):
        detect("auto", src(**{"package_dot_json": "{"}))


def test_the_printed_plan() -> None:
    plan = detect("auto", src(requirements_dot_txt="flask\ngunicorn\n", app_dot_py=""))
    assert plan.lines() == [
        "build: python (Flask in app.py, served by gunicorn)",
        "install: requirements",
        "start: gunicorn --bind '0.0.0.0:$PORT' app:app",
    ]


def test_rendered_dockerfiles_pin_the_base_and_run_unprivileged() -> None:
    plan = detect("auto", src(requirements_dot_txt="flask\ngunicorn\n", app_dot_py=""))
    text = render_dockerfile(plan, 8000, IMAGES)
    assert text.splitlines()[1] == "FROM python:3.12-slim"
    assert "RUN python3 -m pip install --no-cache-dir -r requirements.txt" in text
    assert "USER 10001" in text and "ENV PYTHONUNBUFFERED=1 PORT=8000" in text
    assert 'CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]' in text
    node = render_dockerfile(detect("auto", src(**{"package_dot_json": package(scripts={"start": "x"})})), 3000, IMAGES)
    assert "npm" not in node.split("CMD")[0].split("COPY")[1]  # no dependencies: nothing to install
    assert node.rstrip().endswith('CMD ["npm", "start"]')
    with pytest.raises(ValueError, match="no base image for static"):
        render_dockerfile(plan, 8000, {"node": "n", "python": "p"})
