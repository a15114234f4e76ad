"""A project's local migrations folder in the Supabase CLI's layout: `supabase/migrations/<version>_<name>.sql`,
the version the UTC time the file was made (YYYYMMDDHHMMSS). Naming a new file, reading the folder, and how the
folder compares with a database's history (the comparison is pure).

As the Supabase CLI does, a file whose name is not `<digits>_<name>.sql` is skipped (and said); a file that looks
like a migration but that the platform would refuse (a version that is not a real UTC time, a name with other
characters) is an error naming the file, so nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nextmavens.platform.migrationplan import NAME_PATTERN, Applied, Migration, VersionError, check_version

MIGRATIONS_DIR = Path("supabase") / "migrations"
# What the Supabase CLI takes for a migration file, and where `supabase migration new` writes it: supabase/cli
# v2.104.0, apps/cli-go/pkg/migration/file.go (`^([0-9]+)_(.*)\.sql$`) and internal/migration/new/new.go
# (`<UTC now as 20060102150405>_<name>.sql` in supabase/migrations).
_FILE = re.compile(r"^([0-9]+)_(.*)\.sql$")
# `db new`'s NAME: one plain word of the file name (no separators, dots or spaces: nothing but the file it names)
NEW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


class MigrationFileError(ValueError):
    """A migration file (or a new one's name) that cannot be used; the message names the file or the name."""


@dataclass(frozen=True)
class LocalMigration:
    migration: Migration
    path: Path


@dataclass(frozen=True)
class LocalFolder:
    migrations: list[LocalMigration]  # in version order
    skipped: list[Path]  # files that are not named as migrations


def new_file_name(name: str, now: datetime) -> str:
    """`<YYYYMMDDHHMMSS>_<name>.sql` for `now` (UTC); MigrationFileError for a name that is not one plain word."""
    if not re.fullmatch(NEW_NAME_PATTERN, name):
        raise MigrationFileError(
            f"NAME {name[:120]!r} must be letters, digits, '_' and '-' (at most 100, starting with a letter or "
            "digit), e.g. create_orders"
        )
    return f"{now:%Y%m%d%H%M%S}_{name}.sql"


def parse_file_name(file_name: str) -> tuple[str, str] | None:
    """(version, name) of a migration's file name; None when it is not named as one (skipped, as by Supabase)."""
    found = _FILE.match(file_name)
    return None if found is None else (found.group(1), found.group(2))


def read_folder(folder: Path) -> LocalFolder:
    """The migrations in `folder` (none when it does not exist), in version order."""
    if not folder.is_dir():
        return LocalFolder([], [])
    found: list[LocalMigration] = []
    skipped: list[Path] = []
    for path in sorted(folder.iterdir()):
        parsed = parse_file_name(path.name)
        if parsed is None or not path.is_file():
            skipped.append(path)
            continue
        version, name = parsed
        try:
            check_version(version)
        except VersionError as exc:
            raise MigrationFileError(f"{path}: {exc}") from None
        if not _NAME.match(name):
            raise MigrationFileError(f"{path}: the name after the version must be letters, digits, '_', '-' or '.'")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MigrationFileError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise MigrationFileError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        found.append(LocalMigration(Migration(version, name, text), path))
    found.sort(key=lambda local: local.migration.version)
    for before, after in zip(found, found[1:], strict=False):
        if before.migration.version == after.migration.version:
            raise MigrationFileError(f"{before.path} and {after.path} have the same version")
    return LocalFolder(found, skipped)


@dataclass(frozen=True)
class Row:
    version: str
    name: str
    file: str | None  # the local file, None when the folder lacks it


@dataclass(frozen=True)
class Status:
    applied: list[Row]  # in the database's history, oldest first
    pending: list[Row]  # local files the history lacks, in version order

    def as_json(self) -> dict[str, list[dict[str, str | None]]]:
        return {"applied": [vars(row) for row in self.applied], "pending": [vars(row) for row in self.pending]}


def compare(local: Sequence[LocalMigration], history: Iterable[Applied]) -> Status:
    """Which local files the history holds and which it lacks (pending); history rows the folder lacks have no
    file."""
    files = {item.migration.version: item for item in local}
    applied = []
    for row in history:
        item = files.get(row.version)
        applied.append(Row(row.version, row.name, None if item is None else str(item.path)))
    recorded = {row.version for row in applied}
    pending = [
        Row(item.migration.version, item.migration.name, str(item.path))
        for item in local
        if item.migration.version not in recorded
    ]
    return Status(applied, pending)
