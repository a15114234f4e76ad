"""One owner for the control database: no module outside nextmavens/control/store (and the migrations'
own bookkeeping in control/db.py) names a control table in an SQL string."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nextmavens
from nextmavens.control.db import migration_files

PACKAGE = Path(nextmavens.__file__).parent
OWNERS = ("control/store/", "control/db.py")


def control_tables() -> set[str]:
    tables = {"schema_migrations"}
    for _, body in migration_files():
        tables |= set(re.findall(r"CREATE TABLE (\w+)", body))
    return tables


def sql_naming(tables: set[str]) -> re.Pattern[str]:
    names = "|".join(sorted(tables))
    return re.compile(rf"\b(?:FROM|INTO|UPDATE|JOIN|TABLE|TRUNCATE)\s+(?:ONLY\s+)?(?:public\.)?({names})\b")


def statements_naming(source: str, pattern: re.Pattern[str]) -> list[str]:
    """`line: table` for each string literal (implicit concatenations joined, as Python joins them) that
    names a control table after an SQL keyword."""
    return [
        f"{node.lineno}: {m.group(1)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for m in pattern.finditer(node.value)
    ]


def test_the_migrations_declare_the_tables_looked_for() -> None:
    assert {"projects", "orgs", "secrets", "api_keys", "apply_runs", "backups", "backup_chunks"} <= control_tables()


def test_the_check_sees_the_stores_own_statements() -> None:
    pattern = sql_naming(control_tables())
    found = statements_naming((PACKAGE / "control" / "store" / "projects.py").read_text(), pattern)
    assert any(hit.endswith(": projects") for hit in found) and any(hit.endswith(": orgs") for hit in found)
    assert statements_naming('x = ("SELECT 1 FROM secrets"\n " WHERE scope = %s")', pattern) == ["1: secrets"]
    assert statements_naming('"restore from backups of the projects folder"', pattern) == []


def test_no_module_outside_the_store_names_a_control_table_in_sql() -> None:
    pattern = sql_naming(control_tables())
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(OWNERS):
            continue
        offenders += [f"nextmavens/{relative}:{hit}" for hit in statements_naming(path.read_text(), pattern)]
    assert offenders == [], "control tables queried outside nextmavens/control/store:\n" + "\n".join(offenders)
