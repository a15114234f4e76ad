"""How an app is built: the manifest's `build`, or detection over its source (first match wins).

Order: a Dockerfile always wins (the manifest's `dockerfile:<path>`, or `Dockerfile` at the root); then Node
(`package.json`: Next.js with `next start`, a Next.js static export served by nginx, else its `start` script);
then Python (`pyproject.toml` or `requirements.txt`: FastAPI with uvicorn, Flask and Django with gunicorn);
then static (`index.html` at the root, or `public/index.html`).

Pure: the caller lists the source's files and hands over the text of the few it reads (`Source`); the answer is a
`BuildPlan` that says what was detected and why, printed before the build.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

# The files detection reads (besides the names it looks for): the caller reads at most these.
READ_FILES = ("package.json", "pyproject.toml", "requirements.txt", "next.config.js", "next.config.mjs", "manage.py")
READ_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Source:
    names: Set[str]  # every file's path relative to the source root, "/"-separated
    texts: Mapping[str, str] = field(default_factory=dict)  # READ_FILES that exist, their text

    def has(self, name: str) -> bool:
        return name in self.names


@dataclass(frozen=True)
class BuildPlan:
    kind: str  # dockerfile | node | python | static
    reason: str  # what detection saw, for the printed plan
    dockerfile: str | None = None  # the source's own Dockerfile (path inside the source)
    start: tuple[str, ...] = ()  # the command the rendered image runs (argv)
    install: str = ""  # node: "ci" | "install" | ""; python: "requirements" | "project" | ""
    root: str = "."  # static: the folder served

    def lines(self) -> list[str]:
        out = [f"build: {self.kind} ({self.reason})"]
        if self.dockerfile:
            out.append(f"dockerfile: {self.dockerfile}")
        if self.install:
            out.append(f"install: {self.install}")
        if self.start:
            out.append(f"start: {shlex.join(self.start)}")
        if self.kind == "static":
            out.append(f"serves: {self.root}/ with nginx")
        return out


class DetectError(ValueError):
    pass


def detect(build: str, source: Source) -> BuildPlan:
    """The plan for the manifest's `build` value over `source`; DetectError says what is missing."""
    if build.startswith("dockerfile:"):
        path = build.partition(":")[2]
        if not source.has(path):
            raise DetectError(f"build is {build!r} but the source has no {path}")
        return BuildPlan("dockerfile", f"the manifest names {path}", dockerfile=path)
    if build == "dockerfile" or (build == "auto" and source.has("Dockerfile")):
        if not source.has("Dockerfile"):
            raise DetectError("build is 'dockerfile' but the source has no Dockerfile at its root")
        why = "the manifest says dockerfile" if build == "dockerfile" else "a Dockerfile at the root (it always wins)"
        return BuildPlan("dockerfile", why, dockerfile="Dockerfile")
    finders = {"node": _node, "python": _python, "static": _static}
    if build in finders:
        found = finders[build](source)
        if found is None:
            raise DetectError(f"build is {build!r} but {_needs[build]}")
        return found
    for kind in ("node", "python", "static"):
        found = finders[kind](source)
        if found is not None:
            return found
    raise DetectError(
        "could not detect how to build the app: add a Dockerfile, a package.json with a start script, a "
        "pyproject.toml or requirements.txt naming FastAPI, Flask or Django, or an index.html"
    )


_needs = {
    "node": "the source has no package.json with a start script or Next.js",
    "python": "the source has no pyproject.toml or requirements.txt naming FastAPI, Flask or Django",
    "static": "the source has no index.html (at the root or in public/)",
}


_PLAIN_NODE = re.compile(r"node\s+([A-Za-z0-9_][A-Za-z0-9_./-]*)")


def _node(source: Source) -> BuildPlan | None:
    text = source.texts.get("package.json")
    if text is None:
        return None
    try:
        package = json.loads(text)
    except ValueError as exc:
        raise DetectError(f"package.json is not valid JSON: {exc}") from None
    if not isinstance(package, dict):
        raise DetectError("package.json must be a JSON object")
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    deps: dict[str, object] = {}
    for key in ("dependencies", "devDependencies"):
        if isinstance(package.get(key), dict):
            deps.update(package[key])
    install = "ci" if source.has("package-lock.json") else ("install" if package.get("dependencies") else "")
    if "next" in deps:
        config = source.texts.get("next.config.js", "") + source.texts.get("next.config.mjs", "")
        if re.search(r"output\s*:\s*['\"]export['\"]", config):
            return BuildPlan("static", "Next.js with output: 'export' (a static export)", install="ci", root="out")
        return BuildPlan(
            "node", "package.json with Next.js", start=("npx", "--no-install", "next", "start"), install=install or "ci"
        )
    start = scripts.get("start") if isinstance(scripts, dict) else None
    if isinstance(start, str) and start.strip():
        direct = _PLAIN_NODE.fullmatch(start.strip())
        if direct:
            # `node <file>` runs as PID 1 itself: it gets docker's SIGTERM (npm would not pass it on)
            return BuildPlan("node", "package.json start script", start=("node", direct.group(1)), install=install)
        return BuildPlan("node", "package.json start script", start=("npm", "start"), install=install)
    main = package.get("main")
    if isinstance(main, str) and main and source.has(main):
        return BuildPlan("node", f"package.json with main {main}", start=("node", main), install=install)
    return None


_PY_FRAMEWORKS = (("fastapi", "FastAPI"), ("flask", "Flask"), ("django", "Django"))
_ENTRY_FILES = ("main.py", "app.py", "server.py", "wsgi.py", "asgi.py")


def _requirements(source: Source) -> set[str]:
    names: set[str] = set()
    for line in source.texts.get("requirements.txt", "").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match and not line.startswith("-"):
            names.add(match.group(0).lower().replace("_", "-"))
    pyproject = source.texts.get("pyproject.toml", "")
    for match in re.finditer(r"[\"']([A-Za-z0-9][A-Za-z0-9._-]*)", pyproject):
        names.add(match.group(1).lower().replace("_", "-"))
    return names


def _python(source: Source) -> BuildPlan | None:
    if not (source.has("requirements.txt") or source.has("pyproject.toml")):
        return None
    install = "requirements" if source.has("requirements.txt") else "project"
    names = _requirements(source)
    framework = next((label for name, label in _PY_FRAMEWORKS if name in names), None)
    if framework is None:
        return None
    entry = next((name for name in _ENTRY_FILES if source.has(name)), None)
    if framework == "Django":
        project = _django_project(source)
        if project is None:
            raise DetectError("Django detected but no <project>/wsgi.py was found")
        return BuildPlan(
            "python",
            "Django (requirements), served by gunicorn",
            start=("gunicorn", "--bind", "0.0.0.0:$PORT", f"{project}.wsgi"),
            install=install,
        )
    if entry is None:
        raise DetectError(f"{framework} detected but none of {', '.join(_ENTRY_FILES)} is at the root")
    module = entry.removesuffix(".py")
    if framework == "FastAPI":
        if "uvicorn" not in names:
            raise DetectError("FastAPI detected: add uvicorn to the requirements (it serves the app)")
        return BuildPlan(
            "python",
            f"FastAPI in {entry}, served by uvicorn",
            start=("uvicorn", f"{module}:app", "--host", "0.0.0.0", "--port", "$PORT"),
            install=install,
        )
    if "gunicorn" not in names:
        raise DetectError("Flask detected: add gunicorn to the requirements (the production server)")
    return BuildPlan(
        "python",
        f"Flask in {entry}, served by gunicorn",
        start=("gunicorn", "--bind", "0.0.0.0:$PORT", f"{module}:app"),
        install=install,
    )


def _django_project(source: Source) -> str | None:
    for name in sorted(source.names):
        parts = name.split("/")
        if len(parts) == 2 and parts[1] == "wsgi.py":
            return parts[0]
    return None


def _static(source: Source) -> BuildPlan | None:
    if source.has("index.html"):
        return BuildPlan("static", "index.html at the root", root=".")
    if source.has("public/index.html"):
        return BuildPlan("static", "public/index.html", root="public")
    return None
