"""The host's manifest repository: the operator's `manifest_source` published to `projects_dir` as a
fast-forward (nextmavens/host/publish.py), owned by the platform service's user, which commits there too."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import apt

from nextmavens.host import publish
from nextmavens.host.context import host_config
from nextmavens.host.facts import ManifestRepoState
from nextmavens.host.manifestsource import ManifestSourceError, manifest_source, publish_action
from nextmavens.host.operations import notice, publish_manifests


@deploy("Manifest repository")
def manifests():
    config = host_config()
    try:
        source = manifest_source(config.manifest_source)
    except ManifestSourceError as err:
        raise DeployError(f"{err}; nothing was run") from None
    pull = publish.pull_command(
        config.admin_user, str(host.data.get("ssh_hostname") or host.name), config.ssh_port, config.projects_dir
    )
    # Decided now, before any operation runs, so a host holding commits the operator lacks changes nothing at all;
    # publish_manifests decides again at execute time.
    state = host.get_fact(ManifestRepoState, path=config.projects_dir)
    action = publish_action(state, str(source.path), source.commit, config.projects_dir, pull)
    if action.kind == "refuse":
        raise DeployError(f"{host.name}: {action.message}")
    if source.dirty:
        notice(
            name=f"NOTICE: {source.path} has uncommitted changes; only its HEAD {source.commit[:12]} is published",
            message="commit them to publish them",
        )
    apt.packages(name="git for the manifest repository", packages=["git"])
    publish_manifests(
        name=f"Publish manifests {source.commit[:12]} to {config.projects_dir} (fast-forward only)",
        path=config.projects_dir,
        source=str(source.path),
        commit=source.commit,
        bundle=source.bundle(),
        branch=source.branch,
        owner=config.platform_user,
        pull=pull,
        remote_bundle=f"{config.platform_dir}/manifests.bundle",
    )
