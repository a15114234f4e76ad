"""Writing manifest folders for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_project(root: Path, org: str, slug: str, **fields: Any) -> Path:
    manifest: dict[str, Any] = {"ref": slug, "name": f"Project {slug}", "auth": {"site_url": f"https://{slug}.example"}}
    manifest.update(fields)
    path = root / org / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def write_raw(root: Path, org: str, filename: str, text: str) -> Path:
    path = root / org / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
