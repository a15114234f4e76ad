"""Scratch folders a PostgreSQL server run as the `postgres` user can reach (pytest's own are 0700)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devkit.localdb.server import LocalPostgres


def scratch_dir(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o711)
    return base


@contextmanager
def cloned_server(template: LocalPostgres, prefix: str, fast: bool = True) -> Iterator[tuple[LocalPostgres, Path]]:
    """A started copy of `template` in a scratch folder of its own, which the caller may use too.

    The server is stopped and the folder removed afterwards, also when starting failed: each copy is about
    125 MB, and a run that left them behind filled /tmp.
    """
    base = scratch_dir(prefix)
    try:
        server = template.clone(base / "server", fast=fast)
        server.start()
        try:
            yield server, base
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
