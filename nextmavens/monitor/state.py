"""Monitor state between timer runs: small JSON files in a state folder (default /var/lib/nextmavens).

Files, not the control database, on purpose: the disk monitor must keep working when the disk is so full
that PostgreSQL has stopped. Writes are atomic (temp file + rename) and private (0600).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nextmavens.files import write_atomic

DEFAULT_STATE_DIR = Path("/var/lib/nextmavens")


def state_dir() -> Path:
    return Path(os.environ.get("NEXTMAVENS_STATE_DIR", str(DEFAULT_STATE_DIR)))


def load_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}  # a torn or hand-edited file: start over rather than crash every five minutes
    return value if isinstance(value, dict) else {}


def save_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True), 0o600)
