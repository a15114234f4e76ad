"""`nextmavens secrets set/list` against a real PostgreSQL: sealed in the control database, read from stdin, never
printed, audited without the value, and only for names the app declares."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.engine import REPO, Stage
from tests.support.projects import write_project

pytestmark = pytest.mark.integration
VALUE = "sk_live_not-a-real-key_0123456789"


def secrets_cli(stage: Stage, *args: str, value: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nextmavens.cli", "secrets", *args],
        env=stage.env(),
        cwd=REPO,
        input=value,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def shop(stage: Stage) -> Stage:
    write_project(stage.projects, "acme", "shop", apps=[{"name": "web", "secrets": ["STRIPE_KEY", "OTHER"]}])
    stage.apply()
    return stage


def test_a_declared_secret_is_sealed_from_stdin_and_listed_without_its_value(shop: Stage) -> None:
    stored = secrets_cli(shop, "set", "acme/shop", "web", "STRIPE_KEY", value=VALUE + "\n")
    assert stored.returncode == 0, stored.stderr
    listed = secrets_cli(shop, "list", "acme/shop", "web")
    assert listed.stdout.splitlines() == ["STRIPE_KEY\tset", "OTHER\tmissing"]
    with shop.engine().secrets() as store:
        assert store.app_secrets("shop", "web", ["STRIPE_KEY", "OTHER"]) == {"STRIPE_KEY": VALUE}
    rows = shop.sql("SELECT name, ciphertext FROM secrets WHERE scope = 'shop'", dbname="nextmavens")
    assert ("app:web:STRIPE_KEY",) in [(r[0],) for r in rows]
    assert all(VALUE.encode() not in bytes(r[1]) for r in rows)
    audit = json.dumps(shop.sql("SELECT command, changes::text FROM apply_runs", dbname="nextmavens"))
    assert "secrets set" in audit and "web/STRIPE_KEY" in audit and VALUE not in audit
    for out in (stored.stdout, stored.stderr, listed.stdout, listed.stderr):
        assert VALUE not in out


def test_a_new_value_replaces_the_old(shop: Stage) -> None:
    assert secrets_cli(shop, "set", "acme/shop", "web", "OTHER", value="one").returncode == 0
    assert secrets_cli(shop, "set", "acme/shop", "web", "OTHER", value="two\r\n").returncode == 0
    with shop.engine().secrets() as store:
        assert store.app_secrets("shop", "web", ["OTHER"]) == {"OTHER": "two"}


@pytest.mark.parametrize(
    ("args", "value", "fragment"),
    [
        (("acme/shop", "web", "UNDECLARED"), "x", "not in the `secrets` of app 'web'"),
        (("acme/shop", "api", "STRIPE_KEY"), "x", "declares no app 'api' (apps: web)"),
        (("acme/none", "web", "STRIPE_KEY"), "x", "no manifest for 'acme/none'"),
        (("acme/shop", "web", "STRIPE_KEY"), "\n", "is empty; nothing was stored"),
        (("acme/shop", "web", "STRIPE_KEY"), "a\0b", "NUL"),
    ],
)
def test_refusals_store_nothing(shop: Stage, args: tuple[str, ...], value: str, fragment: str) -> None:
    refused = secrets_cli(shop, "set", *args, value=value)
    assert refused.returncode == 1 and fragment in refused.stderr, refused.stderr
    count = shop.sql("SELECT count(*) FROM secrets WHERE starts_with(name, %s)", ("app:",), dbname="nextmavens")
    assert count == [(0,)]
