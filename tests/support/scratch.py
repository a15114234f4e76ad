"""Scratch folders a PostgreSQL server run as the `postgres` user can reach (pytest's own are 0700)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o711)
    return base
