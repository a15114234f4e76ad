"""Env files docker compose reads literally, and docker run with no platform secret in its environment.

The written form is checked against `tests.support.dotenv.compose_go_dotenv` (compose-go's parser,
transcribed) and against the facts table.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nextmavens.edge.hostruntime import edge_runtime, running_refs
from nextmavens.edge.services import env_file_text, env_file_value, render_project_services, write_project_files
from nextmavens.edge.settingsfile import EdgeHost, EdgeHostConfig
from nextmavens.keys import issue_api_keys, new_jwt_secret, new_password
from nextmavens.monitor.storage import run_prune_command
from tests.support.dotenv import compose_go_dotenv
from tests.support.edgesamples import manifest, secrets_for, settings

COMPOSE_ENV = {"POSTGRES_PASSWORD": "cluster-superuser-password", "NEXTMAVENS_DSN": "postgresql://postgres:pw@db/"}

HOSTILE_VALUES = [
    "https://x.example/?x=${POSTGRES_PASSWORD}",
    "$NEXTMAVENS_DSN",
    "$$literal",
    "it's",
    "''",
    'say "hi"',
    "back\\slash",
    "two\\\\backslashes",
    "\\$not-a-variable",
    "a \\'quoted\\' b".replace("\\'", "\\\\'"),  # backslash pairs before a quote
    "value # not a comment",
    "  leading and trailing spaces  ",
    "#hash-first",
    "tab\there",
    "",
    "unicode é 東京",
]


def test_the_old_unquoted_form_was_expanded_by_compose() -> None:
    """Why the env files changed: compose read `KEY=value` with `${...}` from its own environment."""
    parsed = compose_go_dotenv("GOTRUE_SITE_URL=https://x.example/?x=${POSTGRES_PASSWORD}\n", COMPOSE_ENV.get)
    assert parsed["GOTRUE_SITE_URL"] == "https://x.example/?x=cluster-superuser-password"


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_every_value_reaches_compose_literally(value: str) -> None:
    text = env_file_text({"A_FIRST": "x", "KEY": value, "Z_LAST": "y"})
    assert compose_go_dotenv(text, COMPOSE_ENV.get) == {"A_FIRST": "x", "KEY": value, "Z_LAST": "y"}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("${POSTGRES_PASSWORD}", "'${POSTGRES_PASSWORD}'"),  # single quotes: never interpolated
        ("it's", "'it\\'s'"),  # \' is the only escape that changes anything
        ('a"b', "'a\"b'"),  # a double quote needs nothing
        ("a\\b", "'a\\b'"),  # \b stays \b
        ("a\\\\b", "'a\\\\b'"),  # \\ stays \\
        ("a # b", "'a # b'"),  # no comment inside quotes
        (" x ", "' x '"),  # spaces kept
    ],
)
def test_the_written_form_follows_the_facts_table(value: str, written: str) -> None:
    assert env_file_value("KEY", value) == written


@pytest.mark.parametrize("value", ["ends with a backslash\\", "odd \\' before a quote", "line\nbreak", "nul\0"])
def test_values_compose_cannot_read_literally_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        env_file_value("GOTRUE_JWT_SECRET", value)
    assert str(caught.value).startswith("GOTRUE_JWT_SECRET: ")
    assert value not in str(caught.value)


def test_generated_secrets_and_a_rendered_project_round_trip(tmp_path: Path) -> None:
    for _ in range(50):
        secret = new_jwt_secret()
        keys = issue_api_keys(secret)
        values = {"P": new_password(), "S": secret, "A": keys.anon, "R": keys.service_role}
        assert compose_go_dotenv(env_file_text(values), COMPOSE_ENV.get) == values
    shop = manifest(
        "shop",
        storage={"enabled": True},
        auth={"site_url": "https://shop.example/it's#x", "redirect_urls": ["https://a.example/cb?x=1&y='2'"]},
    )
    rendered = render_project_services(settings(), shop, secrets_for("shop"))
    write_project_files(tmp_path, rendered)
    for name, variables in rendered.env_files.items():
        path = tmp_path / "shop" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert compose_go_dotenv(path.read_text(), COMPOSE_ENV.get) == variables


# ------------------------------------------------------------------ docker's environment

SECRETS = {
    "NEXTMAVENS_DSN": "postgresql://postgres:dsn-secret-1@127.0.0.1/postgres",
    "PGPASSWORD": "pgpassword-secret-2",
    "POSTGRES_PASSWORD": "postgres-password-secret-3",
    "NEXTMAVENS_MASTER_KEY": "/etc/nextmavens/master.key",
    "SUPAVISOR_API_JWT_SECRET": "supavisor-secret-4",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-5",
}


@pytest.fixture
def env_recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A docker stand-in that writes the environment it was started with; real secrets in os.environ."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    record = tmp_path / "env.txt"
    script = tmp_path / "docker-standin"
    script.write_text(f"#!/bin/sh\nenv >> {record}\necho ---- >> {record}\n")
    script.chmod(0o755)
    return script, record


def _recorded(record: Path) -> list[dict[str, str]]:
    runs = record.read_text().split("----\n")[:-1]
    return [dict(line.split("=", 1) for line in run.splitlines() if "=" in line) for run in runs]


def test_docker_and_compose_from_the_edge_get_no_secret(env_recorder: tuple[Path, Path]) -> None:
    script, record = env_recorder
    host = EdgeHost(settings=settings(), config=EdgeHostConfig(settings=settings(), docker=[str(script)]))
    assert running_refs(host) == set()  # `docker ps`
    assert edge_runtime(host).run(["docker", "compose", "-p", "nm-shop", "up", "-d"]).returncode == 0
    runs = _recorded(record)
    assert len(runs) == 2
    for env in runs:
        assert not set(SECRETS) & set(env), sorted(env)
        assert not any(secret in value for value in env.values() for secret in SECRETS.values())
        assert env["DOCKER_HOST"] == "unix:///run/user/1000/docker.sock" and env["PATH"]


def test_the_monitors_docker_prune_gets_no_secret(env_recorder: tuple[Path, Path]) -> None:
    script, record = env_recorder
    assert run_prune_command([str(script), "image", "prune", "--force"]).returncode == 0
    (env,) = _recorded(record)
    assert not set(SECRETS) & set(env), sorted(env)
