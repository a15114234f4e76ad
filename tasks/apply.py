"""Last step: the engine applies the project manifests on the host, against the shared Postgres."""

from pyinfra.api import deploy

from nextmavens.host.context import host_config
from nextmavens.host.dist import file_sha256, resolve_wheel, tree_sha256, wheel_has_module
from nextmavens.host.edgeconfig import render_edge_config
from nextmavens.host.manifestsource import manifest_source
from nextmavens.host.operations import engine_apply, notice
from nextmavens.host.render import sha256
from nextmavens.templates import REPO_ROOT


@deploy("Apply project manifests")
def apply():
    config = host_config()
    wheel = resolve_wheel(config.nextmavens_wheel)
    # Decided from the wheel we upload (local data, not host state): a build without the engine's
    # CLI cannot apply anything, and says so instead of failing the converge.
    if not wheel_has_module(wheel, "nextmavens/cli.py"):
        notice(
            name="SKIPPED nextmavens apply: this build of nextmavens has no CLI (nextmavens/cli.py) yet",
            message=f"{wheel.name} has no nextmavens/cli.py",
        )
        return
    # The edge settings are inputs too: a changed domain or address re-applies the edge.
    edge = render_edge_config(config) if config.edge_enabled else ""
    # The manifests are the commit the deploy publishes (tasks/manifests.py), whatever the folder holds besides.
    commit = manifest_source(config.manifest_source).commit
    inputs = sha256(commit + file_sha256(wheel) + tree_sha256(REPO_ROOT / "stacks") + sha256(edge))
    engine_apply(
        name="nextmavens apply --projects DIR --yes (when manifests, engine or stacks changed)",
        wrapper=f"{config.platform_dir}/bin/nextmavens-env",
        projects_dir=config.projects_dir,
        marker=f"{config.platform_dir}/.last-apply.sha256",
        inputs_sha256=inputs,
    )
