"""Where the PostgreSQL client programs the product runs (pg_dump, pg_restore) come from.

On a host the server runs in a container and the deploy installs Debian's or Ubuntu's `postgresql-client`
(group data `base_packages`), so the programs are on PATH; `NEXTMAVENS_PG_BIN` names a folder instead
(tests, or a client of another version). A newer pg_dump reads older servers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path


def pg_bin_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The folder NEXTMAVENS_PG_BIN names, if any."""
    configured = (os.environ if env is None else env).get("NEXTMAVENS_PG_BIN")
    return Path(configured) if configured else None


def pg_tool(name: str, env: Mapping[str, str] | None = None, folder: Path | None = None) -> str:
    """The program to run: from `folder` when given, else from NEXTMAVENS_PG_BIN, else found on PATH."""
    environ = os.environ if env is None else env
    folder = folder or pg_bin_dir(environ)
    if folder:
        return str(folder / name)
    found = shutil.which(name, path=environ.get("PATH"))
    if found:
        return found
    raise FileNotFoundError(f"{name} not found on PATH: install postgresql-client, or set NEXTMAVENS_PG_BIN")
