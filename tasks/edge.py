"""The edge's settings on the host: the file `nextmavens apply` reads (NEXTMAVENS_EDGE_CONFIG) and the
platform secrets it names, each in its own 0600 file copied on the host from the secrets file."""

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files

from nextmavens.host.context import host_config
from nextmavens.host.edgeconfig import EDGE_SECRETS, edge_dir, render_edge_config, secret_files
from nextmavens.host.operations import notice, secret_copies


@deploy("Edge settings")
def edge():
    config = host_config()
    if not config.edge_enabled:
        notice(name="SKIPPED the edge: edge_enabled is off", message="edge_enabled = False in group data")
        return
    if not config.edge_issue_certificates:
        notice(
            name="Edge certificates OFF (edge_issue_certificates = False): vhosts serve plain HTTP",
            message="no certificates are requested on this host",
        )
    files.directory(name="Edge secrets directory", path=str(edge_dir(config)), mode="700", user="root")
    secret_copies(
        name="Edge platform secrets, one 0600 file each, from the secrets file",
        secrets_file=config.secrets_file,
        files={path: EDGE_SECRETS[field] for field, path in secret_files(config).items()},
    )
    files.put(
        name=f"Edge settings {config.edge_config_file}",
        src=StringIO(render_edge_config(config)),
        dest=config.edge_config_file,
        mode="600",
        user="root",
        group="root",
    )
