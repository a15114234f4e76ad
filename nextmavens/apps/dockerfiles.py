"""The Dockerfile of a detected build (node, python, static), rendered from the templates beside this module with
the base images pinned in group data (`app_images`; the sandbox substitutes images built from Debian's packages).

Pure: a plan and plain values in, the Dockerfile's text out. A `dockerfile` plan uses the source's own file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nextmavens.apps.detect import BuildPlan
from nextmavens.templates import environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
BASE_KINDS = ("node", "python", "static")


def render_dockerfile(plan: BuildPlan, port: int, images: Mapping[str, str]) -> str:
    """`images`: base image per kind (node, python, static)."""
    if plan.kind not in BASE_KINDS:
        raise ValueError(f"a {plan.kind} build uses the source's own Dockerfile")
    missing = [kind for kind in BASE_KINDS if not images.get(kind)]
    if missing:
        raise ValueError(f"no base image for {', '.join(missing)} (group data app_images)")
    start = [str(port) if part == "$PORT" else part.replace("$PORT", str(port)) for part in plan.start]
    return (
        environment(TEMPLATES)
        .get_template(f"{plan.kind}.Dockerfile.j2")
        .render(
            reason=plan.reason,
            base=images[plan.kind],
            node_base=images["node"],
            node_build=plan.kind == "static" and plan.install == "ci",
            install=plan.install,
            port=port,
            start=start,
            root=plan.root,
        )
    )
