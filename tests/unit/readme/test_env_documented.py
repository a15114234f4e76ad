"""Every NEXTMAVENS_* environment variable the product, the deploy or the scripts read is in the README's one
configuration table, and the table names none that nothing reads: the table cannot drift from the code."""

from __future__ import annotations

import re

from tests.support.repo import REPO

# Where an operator-facing name can be read: the package, the deploy, its data and templates, the scripts.
READERS = ["nextmavens", "devkit", "tasks", "deploys", "group_data", "templates", "stacks", "scripts", "inventory.py"]
NAME = re.compile(r"NEXTMAVENS_[A-Z0-9_]*[A-Z0-9]")


def names_read() -> set[str]:
    found: set[str] = set()
    for entry in READERS:
        root = REPO / entry
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for path in files:
            if "__pycache__" in path.parts:
                continue
            try:
                found |= set(NAME.findall(path.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                continue
    return found


def names_documented() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Configuration\n") :]
    section = section[: section.index("\n#### ")]
    rows = [line for line in section.splitlines() if line.startswith("| `NEXTMAVENS_")]
    return {name for row in rows for name in NAME.findall(row.split(" | ")[0])}


def _covered(name: str, documented: set[str]) -> bool:
    # inventory.py builds its names from a prefix ("NEXTMAVENS_PROD" + "_HOST"): a prefix of documented names
    return name in documented or any(doc.startswith(name + "_") for doc in documented)


def test_every_variable_read_is_in_the_readme_table() -> None:
    documented = names_documented()
    missing = sorted(name for name in names_read() if not _covered(name, documented))
    assert not missing, f"add to the README's Configuration table: {missing}"


def test_the_table_names_only_variables_something_reads() -> None:
    read = names_read()
    assert len(names_documented()) >= 40
    stale = sorted(names_documented() - read)
    assert not stale, f"nothing reads these any more; remove their rows: {stale}"
