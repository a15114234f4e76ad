"""Last step: the engine applies the project manifests on the host, against the shared Postgres."""

from pyinfra.api import deploy

from nextmavens.host.context import host_config
from nextmavens.host.dist import file_sha256, find_or_build_wheel, tree_sha256
from nextmavens.host.operations import engine_apply
from nextmavens.host.render import REPO_ROOT, sha256


@deploy("Apply project manifests")
def apply():
    config = host_config()
    inputs = sha256(
        tree_sha256(REPO_ROOT / "projects")
        + file_sha256(find_or_build_wheel(config.nextmavens_wheel_glob))
        + tree_sha256(REPO_ROOT / "stacks")
    )
    engine_apply(
        name="nextmavens apply --projects DIR --yes (when manifests, engine or stacks changed)",
        wrapper=f"{config.platform_dir}/bin/nextmavens-env",
        projects_dir=config.projects_dir,
        marker=f"{config.platform_dir}/.last-apply.sha256",
        inputs_sha256=inputs,
    )
