"""Hosts. Connection details come from the environment; nothing secret is in git.

production: NEXTMAVENS_PROD_HOST (required to have a production host), NEXTMAVENS_PROD_USER (default:
  the admin user; use root for the very first run on a fresh VPS), NEXTMAVENS_PROD_PORT (default 22),
  NEXTMAVENS_PROD_KEY (private key path; default: your SSH agent/config).
sandbox: NEXTMAVENS_SANDBOX_HOST, _PORT, _KEY, _USER (default root) and _KNOWN_HOSTS, as
  printed by `nextmavens sandbox up`.

Group data is validated here, before pyinfra connects: an error names the group file and the key.
"""

import os
import sys
from pathlib import Path

from nextmavens.host.hostdata import HostDataError, validate_groups


def _host(prefix: str, default_user: str) -> list:
    hostname = os.environ.get(f"{prefix}_HOST")
    if not hostname:
        return []
    data = {
        "ssh_hostname": hostname,
        "ssh_port": int(os.environ.get(f"{prefix}_PORT", "22")),
        "ssh_user": os.environ.get(f"{prefix}_USER", default_user),
    }
    if os.environ.get(f"{prefix}_KNOWN_HOSTS"):
        data["ssh_known_hosts_file"] = os.environ[f"{prefix}_KNOWN_HOSTS"]
    if os.environ.get(f"{prefix}_KEY"):
        data["ssh_key"] = os.path.expanduser(os.environ[f"{prefix}_KEY"])
    return [(hostname, data)]


production = _host("NEXTMAVENS_PROD", "nextmavens")
sandbox = _host("NEXTMAVENS_SANDBOX", "root")

notices: list[str] = []
try:
    validate_groups(
        Path(__file__).resolve().parent / "group_data",
        [name for name, hosts in (("production", production), ("sandbox", sandbox)) if hosts],
        notices,
    )
except HostDataError as err:
    sys.exit(f"Host data is invalid; nothing was run:\n{err}")
for line in notices:  # knobs an earlier release had: ignored, and the operator is told to delete them
    print(f"Host data: {line}", file=sys.stderr)
