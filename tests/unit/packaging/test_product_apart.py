"""The product wheel holds the product only, and the product never imports the workshop (devkit/) or the tests:
a production host installs nextmavens alone."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.repo import REPO

PRODUCT = REPO / "nextmavens"
WORKSHOP_WORDS = ("devkit", "sandbox", "localdb", "standin")


def test_the_product_wheel_holds_no_workshop_file(tmp_path: Path) -> None:
    # Built from a copy of the working tree's product sources, as the deploy builds from git HEAD's.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(PRODUCT, src / "nextmavens", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    done = subprocess.run([*argv, str(src)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("nextmavens-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
    assert "nextmavens/cli.py" in names and "nextmavens/engine/session.py" in names
    assert any(n.endswith(".sql") for n in names) and any(n.endswith(".j2") for n in names)  # package data kept
    assert all(n.startswith(("nextmavens/", "nextmavens-")) for n in names), names
    assert [n for n in names if any(word in n.lower() for word in WORKSHOP_WORDS)] == []
    assert "nextmavens.commands" not in declared  # the product adds no plugin command of its own


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports, and string constants that name a module to import dynamically."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("devkit."):
            found.add(node.value)
    return found


def test_no_product_module_imports_the_workshop_or_the_tests() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in imported_modules(path) if m.split(".")[0] in ("devkit", "tests"))
        for path in sorted(PRODUCT.rglob("*.py"))
    }
    assert {path: found for path, found in offenders.items() if found} == {}
    assert len(offenders) > 50  # the walk saw the product


def test_the_check_sees_each_kind_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import devkit.sandbox\nfrom tests.support import ports\nfrom . import sibling\n"
        "import importlib\nimportlib.import_module('devkit.localdb.server')\n"
    )
    assert imported_modules(probe) == {"devkit.sandbox", "tests.support", "importlib", "devkit.localdb.server"}
