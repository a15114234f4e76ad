"""Where the repository is, for tests that read its files (group data, templates, the README)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
