"""Which of a client's migrations to apply, and how their SQL is split and recorded. Pure.

The history is Supabase's own `supabase_migrations.schema_migrations` (version, name, statements), so the
Supabase CLI and this service see the same history. A client sends its whole migrations folder (or the files it
wants applied); versions already in the history are skipped; the rest are applied in version order. As the
Supabase CLI does, the request is refused when the database holds versions the client lacks, or when a pending
version is older than the last applied one, unless the client says `include_all`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# The Supabase CLI names a migration `<version>_<name>.sql`, its version the UTC time of `migration new`:
# YYYYMMDDHHMMSS (older tools wrote other digit strings; these are refused here: one ordering, no surprises).
VERSION_PATTERN = r"^[0-9]{14}$"
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{0,100}$"
_VERSION = re.compile(VERSION_PATTERN)


class VersionError(ValueError):
    pass


def check_version(version: str) -> str:
    """The version if it is 14 digits naming a real UTC time (YYYYMMDDHHMMSS); VersionError otherwise."""
    if not _VERSION.match(version):
        raise VersionError(f"version {version!r} is not 14 digits (YYYYMMDDHHMMSS, as `supabase migration new`)")
    try:
        datetime.strptime(version, "%Y%m%d%H%M%S")
    except ValueError:
        raise VersionError(f"version {version!r} is not a valid UTC time (YYYYMMDDHHMMSS)") from None
    return version


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str


@dataclass(frozen=True)
class Applied:
    version: str
    name: str


@dataclass(frozen=True)
class MigrationPlan:
    pending: list[Migration]  # in version order
    skipped: list[str] = field(default_factory=list)  # versions already applied


class PlanRefused(Exception):
    def __init__(self, code: str, message: str, versions: Sequence[str]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.versions = list(versions)


def plan_migrations(local: Iterable[Migration], applied: Iterable[str], include_all: bool) -> MigrationPlan:
    """What to apply of `local` given the `applied` versions; PlanRefused says why nothing may be applied."""
    wanted = sorted(local, key=lambda m: m.version)
    seen: set[str] = set()
    for migration in wanted:
        try:
            check_version(migration.version)
        except VersionError as exc:
            raise PlanRefused("invalid_version", str(exc), [migration.version]) from None
        if migration.version in seen:
            raise PlanRefused("duplicate_version", f"version {migration.version} appears twice", [migration.version])
        seen.add(migration.version)
    history = set(applied)
    pending = [m for m in wanted if m.version not in history]
    for migration in pending:
        ending = next((st for st in split_statements(migration.sql) if ends_transaction(st)), None)
        if ending is not None:
            raise PlanRefused(
                "transaction_control",
                f"migration {migration.version} has a statement that ends or opens a transaction"
                f" ({_first_words(ending)!r}): each migration runs in one transaction with its history row,"
                " so a COMMIT there would keep half of it; remove it",
                [migration.version],
            )
    skipped = [m.version for m in wanted if m.version in history]
    if include_all:
        return MigrationPlan(pending, skipped)
    missing = sorted(history - seen)
    if missing:
        raise PlanRefused(
            "missing_versions",
            f"the database has {len(missing)} version(s) the request lacks: {', '.join(missing[:10])}"
            " (send the whole migrations folder, or include_all to apply anyway)",
            missing,
        )
    last = max(history, default="")
    older = [m.version for m in pending if m.version < last]
    if older:
        raise PlanRefused(
            "out_of_order",
            f"{len(older)} pending version(s) are older than the last applied one ({last}): {', '.join(older[:10])}"
            " (rename them to a newer version, or include_all to apply them anyway)",
            older,
        )
    return MigrationPlan(pending, skipped)


def split_statements(text: str) -> list[str]:
    """The statements of a migration as the Supabase CLI records them: split at each `;` outside quotes,
    comments, dollar quotes, parentheses and BEGIN ATOMIC bodies; each without its `;`, trimmed; empty ones
    dropped. Comments stay with the statement they precede."""
    statements: list[str] = []
    start = 0
    index = 0
    depth = 0  # open parentheses
    atomic = False  # inside BEGIN ATOMIC ... END
    length = len(text)
    while index < length:
        ch = text[index]
        if ch in "'\"":
            index = _quote_end(text, index, ch)
            continue
        if text.startswith("--", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline + 1
            continue
        if text.startswith("/*", index):
            index = _block_end(text, index)
            continue
        if ch == "$":
            tag = re.match(r"\$[A-Za-z_0-9]*\$", text[index:])
            if tag is not None and not (index > 0 and (text[index - 1].isalnum() or text[index - 1] == "_")):
                close = text.find(tag.group(0), index + len(tag.group(0)))
                index = length if close < 0 else close + len(tag.group(0))
                continue
        if ch == "\\":
            index += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch in "aA" and _word_at(text, index, "atomic") and _previous_word(text, index).lower() == "begin":
            atomic = True
        elif ch in "eE" and atomic and depth == 0 and _word_at(text, index, "end"):
            atomic = False
        elif ch == ";" and depth == 0 and not atomic:
            _keep(statements, text[start:index])
            start = index + 1
        index += 1
    _keep(statements, text[start:])
    return statements


# Top-level statements that end (or open) the transaction a migration runs in. ROLLBACK TO SAVEPOINT stays
# inside it; COMMIT/ROLLBACK inside a DO block or procedure fail by themselves within a transaction block.
_TRANSACTION_CONTROL = re.compile(
    r"^(begin|start\s+transaction|commit|end|abort|prepare\s+transaction|rollback(?!\s+(?:work\s+|transaction\s+)?to\b))\b",
    re.IGNORECASE,
)


def ends_transaction(statement: str) -> bool:
    """Whether a split statement, past its leading comments, is BEGIN, COMMIT, END, ROLLBACK (not ROLLBACK TO),
    ABORT, START TRANSACTION or PREPARE TRANSACTION."""
    return _TRANSACTION_CONTROL.match(_past_comments(statement)) is not None


def _past_comments(statement: str) -> str:
    index = 0
    while True:
        while index < len(statement) and statement[index].isspace():
            index += 1
        if statement.startswith("--", index):
            newline = statement.find("\n", index)
            index = len(statement) if newline < 0 else newline + 1
        elif statement.startswith("/*", index):
            index = _block_end(statement, index)
        else:
            return statement[index:]


def _first_words(statement: str) -> str:
    return " ".join(_past_comments(statement).split()[:3])


def _keep(statements: list[str], piece: str) -> None:
    trimmed = piece.strip()
    if trimmed:
        statements.append(trimmed)


def _quote_end(text: str, index: int, quote: str) -> int:
    """Past the closing quote of the literal or identifier opening at `index` (a doubled quote stays inside)."""
    position = index + 1
    while True:
        close = text.find(quote, position)
        if close < 0:
            return len(text)
        if text.startswith(quote * 2, close):
            position = close + 2
            continue
        return close + 1


def _block_end(text: str, index: int) -> int:
    """Past the end of the (nested) block comment opening at `index`."""
    depth = 0
    position = index
    while position < len(text):
        if text.startswith("/*", position):
            depth += 1
            position += 2
        elif text.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(text)


def _word_at(text: str, index: int, word: str) -> bool:
    end = index + len(word)
    before = text[index - 1] if index else " "
    after = text[end] if end < len(text) else " "
    return (
        text[index:end].lower() == word
        and not (before.isalnum() or before == "_")
        and not (after.isalnum() or after == "_")
    )


def _previous_word(text: str, index: int) -> str:
    match = re.search(r"([A-Za-z_]+)\s+$", text[:index])
    return match.group(1) if match else ""
