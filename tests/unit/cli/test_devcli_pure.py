"""The local migrations folder: names of new files, which files are migrations, errors naming the file, and how
the folder compares with a history. The SSE reader the logs command uses, and where a followed log resumes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from nextmavens.devcli.events import Event, read_events
from nextmavens.devcli.logtimes import line_time, printed_already, resume_since
from nextmavens.migrationfiles import MigrationFileError, compare, new_file_name, parse_file_name, read_folder
from nextmavens.platform.migrationplan import Applied

NOW = datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC)


def test_a_new_file_is_named_by_the_utc_second_and_one_plain_word() -> None:
    assert new_file_name("create_orders", NOW) == "20261202090507_create_orders.sql"
    assert new_file_name("add-index2", NOW) == "20261202090507_add-index2.sql"
    for bad in ("", "../x", "a/b", "a b", ".x", "-x", "x.sql", "é", "x" * 101, "a\nb"):
        with pytest.raises(MigrationFileError, match="NAME"):
            new_file_name(bad, NOW)


def test_file_names_are_read_as_the_supabase_cli_reads_them() -> None:
    assert parse_file_name("20250101000000_init.sql") == ("20250101000000", "init")
    assert parse_file_name("20250101000000_.sql") == ("20250101000000", "")
    assert parse_file_name("1_x.sql") == ("1", "x")
    assert parse_file_name("init.sql") is None and parse_file_name("20250101000000_x.sql.bak") is None


def test_the_folder_is_read_in_version_order_and_odd_files_are_skipped(tmp_path: Path) -> None:
    assert read_folder(tmp_path / "absent").migrations == []
    (tmp_path / "20250102000000_b.sql").write_text("select 2")
    (tmp_path / "20250101000000_a.sql").write_text("select 1")
    (tmp_path / "notes.txt").write_text("x")
    folder = read_folder(tmp_path)
    assert [(m.migration.version, m.migration.name, m.migration.sql) for m in folder.migrations] == [
        ("20250101000000", "a", "select 1"),
        ("20250102000000", "b", "select 2"),
    ]
    assert [p.name for p in folder.skipped] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("2025_x.sql", b"select 1", "14 digits"),
        ("20251301000000_x.sql", b"select 1", "not a valid UTC time"),
        ("20250101000000_a b.sql", b"select 1", "the name after the version"),
        ("20250101000000_x.sql", b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_file_the_service_would_refuse_is_an_error_naming_it(
    tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MigrationFileError, match=why) as caught:
        read_folder(tmp_path)
    assert name in str(caught.value)


def test_two_files_of_one_version_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "20250101000000_a.sql").write_text("")
    (tmp_path / "20250101000000_b.sql").write_text("")
    with pytest.raises(MigrationFileError, match="same version"):
        read_folder(tmp_path)


def test_applied_and_pending(tmp_path: Path) -> None:
    (tmp_path / "20250101000000_a.sql").write_text("")
    (tmp_path / "20250103000000_c.sql").write_text("")
    status = compare(read_folder(tmp_path).migrations, [Applied("20250101000000", "a"), Applied("20250102000000", "b")])
    assert status.as_json() == {
        "applied": [
            {"version": "20250101000000", "name": "a", "file": str(tmp_path / "20250101000000_a.sql")},
            {"version": "20250102000000", "name": "b", "file": None},
        ],
        "pending": [{"version": "20250103000000", "name": "c", "file": str(tmp_path / "20250103000000_c.sql")}],
    }


def test_events_are_read_from_lines() -> None:
    lines = [": streaming", "", "data: one", "", "data: two", "data:three", "", "event: end", 'data: {"x": 1}', ""]
    assert list(read_events(lines)) == [
        Event("message", "one"),
        Event("message", "two\nthree"),
        Event("end", '{"x": 1}'),
    ]
    assert list(read_events(["data: cut off"])) == []  # an event without its blank line never arrived whole


def test_a_followed_log_resumes_at_the_last_printed_line() -> None:
    assert line_time("2026-12-02T09:11:11.1234Z GET /") == "2026-12-02T09:11:11.123400000"
    assert line_time("2026-12-02T09:11:11Z x") == "2026-12-02T09:11:11.000000000"
    assert line_time("tick 3") is None and line_time("2026-12-02T09:11:11.5+01:00 x") is None
    last = line_time("2026-12-02T09:11:11.5Z b")
    assert resume_since(last, NOW) == "2026-12-02T09:11:11Z"
    assert resume_since(None, NOW) == "2026-12-02T09:05:07Z"
    assert printed_already("2026-12-02T09:11:11.123456789Z a", last)
    assert printed_already("2026-12-02T09:11:11.5Z b", last)
    assert not printed_already("2026-12-02T09:11:11.500000001Z c", last)
    assert not printed_already("no time on this line", last) and not printed_already("2026-12-02T09:11:11Z a", None)
