"""The README's Layout section names every top-level folder, every folder of the product, the workshop and the
tests, and every top-level module of the product; every path it names exists: the map cannot drift from the tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.repo import REPO

# Folders that are the machine's, not the project's (the .gitignore's, and git's own).
NOT_THE_PROJECTS = {".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".nextmavens", "build", "dist"}
MAPPED = ("nextmavens", "devkit", "tests")
IMAGES = Path("devkit/sandbox/images")  # each image's build context is named; what is inside one is the image's
DESCRIPTION_COLUMN = 32  # where an entry's description starts; a line blank up to it continues the entry


@dataclass
class Entry:
    heads: list[str]  # the paths the entry names, e.g. "nextmavens/engine/", "tests/unit/<area>/"
    text: str  # the whole entry, its continuation lines included


def layout_entries() -> list[Entry]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout\n") :]
    block = section[section.index("```\n") + 4 :]
    block = block[: block.index("```")]
    entries: list[Entry] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        if line[:DESCRIPTION_COLUMN].strip():
            entries.append(Entry(line[:DESCRIPTION_COLUMN].split(), line))
        else:
            entries[-1].text += "\n" + line
    return entries


def _project_folder(path: Path) -> bool:
    return not (
        path.name in NOT_THE_PROJECTS
        or path.name == "__pycache__"
        or path.name.endswith(".egg-info")
        or (path.name.startswith(".") and path.name != ".ci")
    )


def folders_to_map() -> list[str]:
    found = [p.name for p in REPO.iterdir() if p.is_dir() and _project_folder(p)]
    for top in MAPPED:
        for path in sorted((REPO / top).rglob("*")):
            relative = path.relative_to(REPO)
            if not path.is_dir() or not all(_project_folder(Path(part)) for part in relative.parts):
                continue
            if relative.parent.parent == IMAGES or IMAGES in relative.parents and relative.parent != IMAGES:
                continue
            if any(f.is_file() for f in path.iterdir()):
                found.append(relative.as_posix())
    return found


def _head_pattern(head: str) -> re.Pattern[str]:
    # `<area>` stands for any one folder; the folders it stands for must be named in the entry's text
    parts = re.split(r"(<[^>]+>)", head)
    return re.compile("".join("[^/]+" if part.startswith("<") else re.escape(part) for part in parts))


def documented(folder: str, entries: list[Entry]) -> bool:
    """Named as an entry's head, or inside the entry of its nearest mapped ancestor (`golden/` in tests/unit's)."""
    parts = folder.split("/")
    for cut in range(len(parts), 0, -1):
        ancestor = "/".join(parts[:cut]) + "/"
        for entry in entries:
            for head in entry.heads:
                if not head.endswith("/") or not _head_pattern(head).fullmatch(ancestor):
                    continue
                literal = len(head.split("<")[0].rstrip("/").split("/")) if "<" in head else cut
                rest = parts[literal:]
                if all(f"{name}/" in entry.text for name in rest):
                    return True
    return False


def test_every_folder_is_on_the_map() -> None:
    entries, folders = layout_entries(), folders_to_map()
    assert len(folders) > 10 and len(entries) > 10  # the walk and the README's parse saw something
    missing = [folder for folder in folders if not documented(folder, entries)]
    assert not missing, f"folders missing from the README's Layout section: {missing}"


def test_every_top_level_module_of_the_product_is_on_the_map() -> None:
    text = "\n".join(entry.text for entry in layout_entries())
    modules = [p.name for p in sorted((REPO / "nextmavens").glob("*.py")) if p.name != "__init__.py"]
    missing = [name for name in modules if not re.search(rf"(?<!\w){re.escape(name)}", text)]
    assert not missing, f"modules of nextmavens/ missing from the README's Layout section: {missing}"


def test_every_path_on_the_map_exists() -> None:
    assert len(layout_entries()) > 10  # an empty parse would pass the check below
    gone = [
        head
        for entry in layout_entries()
        for head in entry.heads
        if "<" not in head and not (REPO / head).exists()
    ]
    assert not gone, f"the README's Layout section names paths that do not exist: {gone}"


def test_a_folder_left_off_the_map_is_found() -> None:
    entries = [Entry(["nextmavens/"], "nextmavens/  the product"), Entry(["tests/unit/<area>/"], "x: backup/ edge/")]
    assert documented("nextmavens", entries) and documented("tests/unit/edge", entries)
    assert not documented("nextmavens/engine", entries)
    assert not documented("tests/unit/engine", entries)
    assert not documented("tests/unit/edge/golden", entries)
