"""Secrets stay secret; keys show/rotate and destroy behave as the operator is told."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import psycopg
import pytest
from cryptography.exceptions import InvalidTag

from nextmavens.control.crypto import MasterKeyError, load_master_key
from nextmavens.keys import DAY_S, LEGACY_KEY_LIFETIME_S
from tests.support.engine import REPO, Stage
from tests.support.keys import verify_api_key
from tests.support.projects import write_project


@pytest.fixture
def shop(stage: Stage) -> Stage:
    write_project(stage.projects, "acme", "shop")
    return stage


def _all_secret_values(stage: Stage) -> list[str]:
    values = []
    with stage.engine().secrets() as store:
        for scope, name in stage.sql("SELECT scope, name FROM secrets", dbname="nextmavens"):
            value = store.get(scope, name)
            assert value is not None
            values.append(value)
    return values


def test_secrets_never_appear_in_plan_apply_output_or_the_audit_log(shop: Stage) -> None:
    outputs = [shop.cli("plan").stdout, shop.cli("plan", "--json").stdout]
    applied = shop.cli("apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    outputs += [applied.stdout, applied.stderr, shop.cli("apply", "--yes", "--json").stdout]
    # Drift forces a password change through the plan and the audit log.
    shop.sql("ALTER ROLE owner_shop PASSWORD 'changed'")
    outputs += [shop.cli("plan").stdout, shop.cli("apply", "--yes", "--json").stdout]
    audit = json.dumps(
        shop.sql("SELECT command, actor, changes::text, coalesce(error, '') FROM apply_runs", dbname="nextmavens")
    )
    server_log = (shop.server.base / "server.log").read_text()
    secrets = _all_secret_values(shop)
    assert len(secrets) == 13  # JWT secret, 5 passwords + 5 verifiers, the pooler password + verifier
    with shop.engine().secrets() as store:
        project = store.project_secrets("shop")
    assert project is not None
    secrets += [project.keys.anon, project.keys.service_role]
    for secret in secrets:
        for text in [*outputs, audit, server_log]:
            assert secret not in text
        assert repr(secret) not in repr(project)


def test_stored_ciphertext_differs_from_plaintext_and_is_bound_to_its_row(shop: Stage) -> None:
    shop.apply()
    rows = shop.sql("SELECT scope, name, ciphertext FROM secrets", dbname="nextmavens")
    plain = _all_secret_values(shop)
    for (_scope, _name, ciphertext), value in zip(rows, plain, strict=True):
        assert value.encode() not in bytes(ciphertext)
    # Swapping two rows' ciphertexts must not decrypt: each is bound to its scope and name.
    shop.sql(
        "UPDATE secrets SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM secrets"
        " WHERE name = 'password:owner_shop') WHERE name = 'jwt_secret'",
        dbname="nextmavens",
    )
    with shop.engine().secrets() as store, pytest.raises(InvalidTag):
        store.get("shop", "jwt_secret")


def test_master_key_is_created_0600_and_a_loose_one_is_refused(shop: Stage) -> None:
    shop.apply()
    assert shop.master_key.stat().st_mode & 0o777 == 0o600
    assert len(load_master_key(shop.master_key)) == 32
    shop.master_key.chmod(0o640)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_key(shop.master_key)
    result = shop.cli("plan")
    assert result.returncode == 1 and "accessible by group or others" in result.stderr
    shop.master_key.write_text("A" * 43 + "=\n")  # a valid key, but not the one that sealed the secrets
    shop.master_key.chmod(0o600)
    result = shop.cli("plan")
    assert result.returncode == 1 and "does not open the stored secrets" in result.stderr, result.stderr


def test_keys_show_prints_working_keys_and_connection_strings(shop: Stage) -> None:
    shop.apply()
    result = shop.cli("keys", "show", "acme/shop", "--json", "--api-domain", "api.example.test")
    assert result.returncode == 0, result.stderr
    access = json.loads(result.stdout)
    assert access["api_url"] == "https://shop.api.example.test"
    assert verify_api_key(access["anon_key"], access["jwt_secret"])["role"] == "anon"
    assert verify_api_key(access["service_role_key"], access["jwt_secret"])["role"] == "service_role"
    with psycopg.connect(access["database_url"]) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("owner_shop", "shop")
    assert ":6543/shop" in access["pooler_transaction_url"] and "owner_shop.shop:" in access["pooler_session_url"]
    human = shop.cli("keys", "show", "acme/shop")
    assert access["anon_key"] in human.stdout.replace("\n", "")
    missing = shop.cli("keys", "show", "globex/shop")
    assert missing.returncode == 1 and "no applied project" in missing.stderr


def test_keys_rotate_issues_new_keys_and_revokes_the_old(shop: Stage) -> None:
    shop.apply()
    before = json.loads(shop.cli("keys", "show", "acme/shop", "--json").stdout)
    rotated = shop.cli("keys", "rotate", "acme/shop")
    assert rotated.returncode == 0, rotated.stderr
    assert before["anon_key"] not in rotated.stdout
    # Without an edge config nothing at the edge changed, and the command says so instead of "revoked".
    assert "the edge was NOT converged" in rotated.stderr and "still accepts the old keys" in rotated.stderr
    after = json.loads(shop.cli("keys", "show", "acme/shop", "--json").stdout)
    assert after["anon_key"] != before["anon_key"] and after["jwt_secret"] != before["jwt_secret"]
    with pytest.raises(jwt.InvalidSignatureError):
        verify_api_key(before["anon_key"], after["jwt_secret"])
    keys = shop.sql(
        "SELECT role, revoked_at IS NOT NULL FROM api_keys WHERE ref = 'shop' ORDER BY id", dbname="nextmavens"
    )
    assert keys == [("anon", True), ("service_role", True), ("anon", False), ("service_role", False)]
    assert shop.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 1", dbname="nextmavens") == [
        ("keys rotate", "ok")
    ]
    assert shop.plan().empty  # rotating keys is not drift of the database
    elsewhere = shop.cli("keys", "rotate", "globex/shop")
    assert elsewhere.returncode == 1 and "no applied project 'globex/shop'" in elsewhere.stderr
    assert shop.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 1", dbname="nextmavens") == [
        ("keys rotate", "failed")
    ]
    assert json.loads(shop.cli("keys", "show", "acme/shop", "--json").stdout)["anon_key"] == after["anon_key"]


def test_destroy_needs_confirmation_and_an_undeclared_project_then_dumps_first(shop: Stage, tmp_path: Path) -> None:
    shop.apply()
    with shop.login("owner_shop", "shop", "shop") as conn:
        conn.execute("CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 500)")
    dumps = tmp_path / "dumps"
    wrong = shop.cli("destroy", "acme/shop", "--confirm", "acme/shoq", "--dump-dir", str(dumps))
    assert wrong.returncode == 1 and "nothing was dropped" in wrong.stderr
    declared = shop.cli("destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(dumps))
    assert declared.returncode == 1 and "still declares 'shop' as active" in declared.stderr
    assert shop.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == [(1,)]

    write_project(shop.projects, "acme", "shop", state="absent")
    done = shop.cli("destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(dumps))
    assert done.returncode == 0, done.stderr
    [dump] = list(dumps.iterdir())
    assert f"Dump written: {dump}" in done.stdout
    assert dump.stat().st_mode & 0o777 == 0o600
    assert shop.sql("SELECT 1 FROM pg_database WHERE datname = 'shop'") == []
    assert (
        shop.sql(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
            (["owner_shop", "authenticator_shop", "auth_admin_shop", "storage_admin_shop"],),
        )
        == []
    )
    # The dump really holds the data: restore it into a new database and count.
    shop.sql("CREATE DATABASE shop_restored")
    bin_dir = shop.server.bin_dir
    restored = subprocess.run(
        [str(bin_dir / "pg_restore"), "--no-owner", "--no-acl", "-d", shop.server.dsn_for("shop_restored"), str(dump)],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert shop.sql("SELECT count(*) FROM public.orders", dbname="shop_restored") == [(500,)], restored.stderr
    assert shop.sql("SELECT result FROM apply_runs WHERE command = 'destroy'", dbname="nextmavens") == [("ok",)]
    plan = shop.plan()
    assert plan.empty and not plan.notices  # destroyed: no longer an orphan


def _cli(stage: Stage, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """stage.cli with extra environment (settings the test varies)."""
    return subprocess.run(
        [sys.executable, "-m", "nextmavens.cli", *args],
        env={**stage.env(), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _restored_ledger(stage: Stage, dump: Path) -> set[int]:
    stage.sql("CREATE DATABASE restored_scratch")
    restored = subprocess.run(
        [str(stage.server.bin_dir / "pg_restore"), "--no-owner", "--no-acl", "-d"]
        + [stage.server.dsn_for("restored_scratch"), str(dump)],
        capture_output=True,
        text=True,
    )
    assert restored.returncode == 0, restored.stderr
    return {row[0] for row in stage.sql("SELECT id FROM public.ledger", dbname="restored_scratch")}


def test_destroy_keeps_every_write_a_client_saw_committed(shop: Stage, tmp_path: Path) -> None:
    """A writer commits rows in a loop while destroy runs: every row it saw committed is in the dump."""
    shop.apply()
    with shop.login("owner_shop", "shop", "shop") as conn:
        conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY)")
    write_project(shop.projects, "acme", "shop", state="absent")
    dsn = shop.server.dsn_for("shop", user="owner_shop", password=shop.password("shop", "owner_shop"))
    committed: list[int] = []
    refused: list[str] = []
    ids = itertools.count(1)
    writing, stop = threading.Event(), threading.Event()
    deadline = time.monotonic() + 90

    def writer() -> None:
        # Reconnects after losing its session (bounded): a project that can still log in keeps writing.
        for _attempt in range(20):
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    while not stop.is_set() and time.monotonic() < deadline and len(committed) < 500_000:
                        row = next(ids)
                        conn.execute("INSERT INTO ledger VALUES (%s)", (row,))
                        committed.append(row)  # the server said COMMIT: the client relies on this row
                        if len(committed) == 200:
                            writing.set()
            except psycopg.Error as exc:
                refused.append(type(exc).__name__)
            if stop.is_set() or time.monotonic() >= deadline:
                break
        writing.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        assert writing.wait(30) and len(committed) >= 200, refused
        dumps = tmp_path / "dumps"
        done = shop.cli("destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(dumps))
        seen_by_destroy = len(committed)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert done.returncode == 0, done.stdout + done.stderr
    assert refused, "the writer was never cut off: destroy did not end its session"
    [dump] = list(dumps.iterdir())
    in_dump = _restored_ledger(shop, dump)
    lost = sorted(set(committed) - in_dump)
    assert not lost, f"{len(lost)} committed row(s) missing from the dump (of {len(committed)}): {lost[:10]}"
    assert seen_by_destroy <= len(committed)


FAILING_PG_DUMP = """#!/bin/sh
# pg_dump stand-in: starts writing the archive, then fails as a full disk would.
for arg in "$@"; do case "$arg" in --file=*) printf 'PGDMP-partial' > "${arg#--file=}";; esac; done
echo "pg_dump: error: could not write to output file: No space left on device" >&2
exit 1
"""


def test_a_failed_destroy_removes_its_dump_file_and_leaves_the_project_blocked_not_dropped(
    shop: Stage, tmp_path: Path
) -> None:
    shop.apply()
    with shop.login("owner_shop", "shop", "shop") as conn:
        conn.execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)")
    write_project(shop.projects, "acme", "shop", state="absent")
    bin_dir = tmp_path / "pg-bin"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").write_text(FAILING_PG_DUMP)
    (bin_dir / "pg_dump").chmod(0o755)
    (bin_dir / "pg_restore").symlink_to(shop.server.bin_dir / "pg_restore")
    dumps = tmp_path / "dumps"
    failed = _cli(
        shop, "destroy", "acme/shop", "--confirm", "acme/shop", "--dump-dir", str(dumps), NEXTMAVENS_PG_BIN=str(bin_dir)
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert list(dumps.iterdir()) == []  # no empty or partial dump passes for a good one
    assert "No space left on device" in failed.stderr
    assert "Nothing was dropped, but shop is blocked" in failed.stderr and "run `nextmavens apply`" in failed.stderr
    assert shop.sql("SELECT datconnlimit FROM pg_database WHERE datname = 'shop'") == [(0,)]
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        shop.login("owner_shop", "shop", "shop")
    assert shop.sql("SELECT result FROM apply_runs WHERE command = 'destroy'", dbname="nextmavens") == [("failed",)]

    # The documented undo: declare the project again and apply; its data is all there.
    write_project(shop.projects, "acme", "shop")
    shop.apply()
    with shop.login("owner_shop", "shop", "shop") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1,)


def _claims(token: str) -> dict[str, int]:
    return jwt.decode(token, options={"verify_signature": False})


def test_keys_last_the_configured_lifetime_and_keys_show_warns_before_they_expire(shop: Stage) -> None:
    applied = _cli(shop, "apply", "--yes", NEXTMAVENS_KEY_LIFETIME_DAYS="20")
    assert applied.returncode == 0, applied.stderr
    shown = _cli(shop, "keys", "show", "acme/shop", "--json")
    assert shown.returncode == 0, shown.stderr
    access = json.loads(shown.stdout)
    claims = _claims(access["anon_key"])
    assert claims["exp"] - claims["iat"] == 20 * DAY_S
    assert access["keys_expire_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert "warning" in shown.stderr and "expire within 20 day(s)" in shown.stderr
    # The setting applies to keys issued from now on: issued keys never change under their clients.
    again = _cli(shop, "keys", "show", "acme/shop", "--json", NEXTMAVENS_KEY_LIFETIME_DAYS="400")
    assert json.loads(again.stdout)["anon_key"] == access["anon_key"]
    assert _cli(shop, "plan", NEXTMAVENS_KEY_LIFETIME_DAYS="400").returncode == 0

    rotated = _cli(shop, "keys", "rotate", "acme/shop", NEXTMAVENS_KEY_LIFETIME_DAYS="400")
    assert rotated.returncode == 0, rotated.stderr
    renewed = _cli(shop, "keys", "show", "acme/shop", "--json")
    claims = _claims(json.loads(renewed.stdout)["anon_key"])
    assert claims["exp"] - claims["iat"] == 400 * DAY_S and "warning" not in renewed.stderr
    assert shop.sql(
        "SELECT DISTINCT expires_at - issued_at FROM api_keys WHERE revoked_at IS NULL", dbname="nextmavens"
    ) == [(400 * DAY_S,)]

    bad = _cli(shop, "keys", "rotate", "acme/shop", NEXTMAVENS_KEY_LIFETIME_DAYS="ten")
    assert bad.returncode == 1 and "NEXTMAVENS_KEY_LIFETIME_DAYS must be a whole number of days" in bad.stderr
    assert (
        json.loads(_cli(shop, "keys", "show", "acme/shop", "--json").stdout)["anon_key"]
        == json.loads(renewed.stdout)["anon_key"]
    )


def test_keys_issued_before_lifetimes_were_recorded_keep_their_ten_years(shop: Stage) -> None:
    shop.apply()
    shop.sql("UPDATE projects SET keys_expires_at = NULL", dbname="nextmavens")  # as the migration leaves them
    shown = shop.cli("keys", "show", "acme/shop", "--json")
    claims = _claims(json.loads(shown.stdout)["anon_key"])
    assert claims["exp"] - claims["iat"] == LEGACY_KEY_LIFETIME_S and "warning" not in shown.stderr
