"""The platform service's login role as the deploy sets it: the psql input and command carry names and the
secret's key, never a value; bad names are refused before anything runs; the fact's line decides convergence."""

from __future__ import annotations

import pytest

from nextmavens.host.commands import PgLoginRole, postgres_login_role_command
from nextmavens.host.facts import PostgresLoginRole

LOGIN = PgLoginRole("nextmavens_platform", "nextmavens", "PLATFORM_DB_PASSWORD")


def test_the_sql_takes_the_password_from_the_environment_and_logs_no_statement() -> None:
    lines = LOGIN.sql()
    assert lines[0] == "\\getenv pw PLATFORM_DB_PASSWORD"
    # before any statement holding the password: nothing of this session is logged
    assert lines[1:4] == [
        "SET log_statement = 'none';",
        "SET log_min_error_statement = 'panic';",
        "SET pgaudit.log = 'none';",
    ]
    alter = next(line for line in lines if "ALTER ROLE" in line)
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" in alter and ":'pw'" in alter
    assert not any("nextmavens_platform" in line for line in lines)  # names arrive as psql variables


def test_the_command_names_the_key_never_a_value_and_stops_without_one() -> None:
    command = postgres_login_role_command(
        "nextmavens-postgres", "postgres", "/etc/nextmavens/secrets.env", "POSTGRES_PASSWORD", LOGIN
    )
    assert '[ -n "${PLATFORM_DB_PASSWORD:-}" ] && {' in command
    assert "-e PLATFORM_DB_PASSWORD" in command and "-v role=nextmavens_platform -v db=nextmavens" in command


@pytest.mark.parametrize(
    ("role", "database", "key"),
    [("x'; DROP", "nextmavens", "K"), ("ok", "Bad-Name", "K"), ("ok", "db", "A=B")],
)
def test_bad_names_are_refused(role: str, database: str, key: str) -> None:
    with pytest.raises(ValueError):
        PgLoginRole(role, database, key)


def test_the_facts_line_decides() -> None:
    fact = PostgresLoginRole()
    assert LOGIN.converged(fact.process(["t f f f f f t t"]))
    assert not LOGIN.converged(fact.process([]))  # missing role or container down
    assert not LOGIN.converged(fact.process(["f f f f f f f t"]))  # the migration's NOLOGIN role
    assert not LOGIN.converged(fact.process(["t t f f f f t t"]))  # a superuser
    command = fact.command(
        "nextmavens-postgres", "postgres", "/etc/nextmavens/secrets.env", "POSTGRES_PASSWORD",
        "nextmavens_platform", "nextmavens", "PLATFORM_DB_PASSWORD",
    )  # fmt: skip
    assert command.endswith("; true") and "nextmavens_platform" in command
