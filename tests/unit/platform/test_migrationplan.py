"""Which migrations a request applies, what it is refused for, and how a migration's SQL is split and recorded."""

from __future__ import annotations

import pytest

from nextmavens.platform.migrationplan import (
    Migration,
    PlanRefused,
    VersionError,
    check_version,
    ends_transaction,
    plan_migrations,
    split_statements,
)


def m(version: str, name: str = "x") -> Migration:
    return Migration(version, name, "select 1")


V1, V2, V3 = "20250101000000", "20250102000000", "20250103000000"


def test_versions_are_14_digits_of_a_real_utc_time() -> None:
    assert check_version(V1) == V1
    for bad in ("2025010100000", "202501010000000", "2025010100000a", "20251301000000", "20250230000000", ""):
        with pytest.raises(VersionError):
            check_version(bad)


def test_pending_versions_are_applied_in_order_and_applied_ones_skipped() -> None:
    plan = plan_migrations([m(V3), m(V1), m(V2)], [V1], include_all=False)
    assert [p.version for p in plan.pending] == [V2, V3]
    assert plan.skipped == [V1]
    assert plan_migrations([m(V1)], [V1], include_all=False).pending == []


def test_versions_the_request_lacks_are_refused_unless_include_all() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_migrations([m(V3)], [V1, V2], include_all=False)
    assert refused.value.code == "missing_versions" and refused.value.versions == [V1, V2]
    assert [p.version for p in plan_migrations([m(V3)], [V1, V2], include_all=True).pending] == [V3]


def test_a_pending_version_older_than_the_last_applied_is_refused_unless_include_all() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_migrations([m(V1), m(V2), m(V3)], [V1, V3], include_all=False)
    assert refused.value.code == "out_of_order" and refused.value.versions == [V2]
    assert [p.version for p in plan_migrations([m(V1), m(V2), m(V3)], [V1, V3], include_all=True).pending] == [V2]


def test_a_version_sent_twice_or_malformed_is_refused_even_with_include_all() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_migrations([m(V1), m(V1, "again")], [], include_all=True)
    assert refused.value.code == "duplicate_version"
    with pytest.raises(PlanRefused) as invalid:
        plan_migrations([m("20250230000000")], [], include_all=True)
    assert invalid.value.code == "invalid_version"


def test_statements_split_as_the_supabase_cli_records_them() -> None:
    text = """
-- the table
create table a (id int, note text default 'x;y');
insert into a values (1, 'it''s; fine'); /* block ; /* nested ; */ still */ select 1;
create function f() returns int language plpgsql as $body$ begin return 1; end $body$;
create function g() returns int language sql begin atomic select 1; select 2; end;
select "odd;name" from a;
;
"""
    assert split_statements(text) == [
        "-- the table\ncreate table a (id int, note text default 'x;y')",
        "insert into a values (1, 'it''s; fine')",
        "/* block ; /* nested ; */ still */ select 1",
        "create function f() returns int language plpgsql as $body$ begin return 1; end $body$",
        "create function g() returns int language sql begin atomic select 1; select 2; end",
        'select "odd;name" from a',
    ]


def test_unterminated_text_stays_one_statement_and_blank_text_none() -> None:
    assert split_statements("select 'open; quote") == ["select 'open; quote"]
    assert split_statements("select $$ open; dollar") == ["select $$ open; dollar"]
    assert split_statements(" \n ;; \n") == []
    assert split_statements("select a$b; select 2") == ["select a$b", "select 2"]


@pytest.mark.parametrize(
    "statement",
    [
        "COMMIT",
        "commit work",
        "-- done\nEND",
        "/* a /* nested */ b */ rollback",
        "Begin",
        "start transaction",
        "ABORT",
        "prepare transaction 'x'",
    ],
)
def test_statements_that_end_or_open_the_transaction_are_seen(statement: str) -> None:
    assert ends_transaction(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "rollback to savepoint a",
        "ROLLBACK TRANSACTION TO a",
        "savepoint a",
        "create table commits (id int)",
        "do $$ begin commit; end $$",
        "-- commit\nselect 1",
        "endpoint_check()",
    ],
)
def test_other_statements_are_not(statement: str) -> None:
    assert not ends_transaction(statement)


def test_a_pending_migration_with_a_commit_refuses_the_whole_plan() -> None:
    local = [Migration("20260101000000", "a", "select 1"), Migration("20260102000000", "b", "select 1;\ncommit;")]
    with pytest.raises(PlanRefused) as refused:
        plan_migrations(local, [], include_all=False)
    assert refused.value.code == "transaction_control" and refused.value.versions == ["20260102000000"]
    # an already applied one is history: not looked at again
    assert plan_migrations(local, ["20260101000000", "20260102000000"], include_all=False).pending == []
