"""Studio for a project, the pure parts: CryptoJS's passphrase AES as postgres-meta 0.91.6 reads it, the signed
ticket and cookie, the per-project Studio's token, and the owner-role connection."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from nextmavens.naming import project_names
from nextmavens.platform.studiogate import (
    StudioGrant,
    StudioLogin,
    cryptojs_decrypt,
    cryptojs_encrypt,
    derive_key,
    login_role,
    owner_connection,
    read_grant,
    role_connection,
    sign_grant,
    studio_env,
    studio_login,
    studio_token,
)

# Made by the real crypto-js 4 (postgres-meta 0.91.6's dependency, in its npm tree):
# CryptoJS.AES.encrypt("postgresql://owner_shop:p%40ss@db:5432/shop", "meta-key").toString()
FROM_CRYPTO_JS = "U2FsdGVkX1+ur+PtzjSQzEunY/WEmszRZPlloWOvyEpJLZWBK7MAKDcCDtVxXskg3s6B/aFULsHwqD7k/uOHvA=="
KEY = derive_key(b"\x01" * 32, "grant")
HASH = "ab" * 32


def test_what_crypto_js_encrypted_decrypts_and_a_wrong_key_or_text_gives_nothing() -> None:
    assert cryptojs_decrypt(FROM_CRYPTO_JS, "meta-key") == "postgresql://owner_shop:p%40ss@db:5432/shop"
    assert cryptojs_decrypt(FROM_CRYPTO_JS, "another-key") is None
    assert cryptojs_decrypt("postgres://postgres:x@db/shop", "meta-key") is None
    assert cryptojs_decrypt("U2FsdGVkX19AAAAAAAAAAAAAAAAAAAAA", "meta-key") is None


def test_encryption_is_salted_and_round_trips() -> None:
    one, two = cryptojs_encrypt("postgres://a", "k"), cryptojs_encrypt("postgres://a", "k")
    assert one != two and one.startswith("U2FsdGVkX1")  # base64 of "Salted__"
    assert cryptojs_decrypt(one, "k") == cryptojs_decrypt(two, "k") == "postgres://a"
    assert cryptojs_encrypt("x", "k", salt=b"12345678") == cryptojs_encrypt("x", "k", salt=b"12345678")


def test_keys_differ_by_purpose() -> None:
    master = b"\x02" * 32
    assert len({derive_key(master, p) for p in ("grant", "token", "studio-crypto")}) == 3


def test_a_grant_reads_back_only_with_its_key_purpose_and_life() -> None:
    grant = StudioGrant("acme", "shop", HASH, 2000)
    signed = sign_grant(KEY, "cookie", grant)
    assert read_grant(KEY, "cookie", signed, 1999) == grant
    assert read_grant(KEY, "cookie", signed, 2000) is None  # expired
    assert read_grant(KEY, "ticket", signed, 0) is None  # a cookie is no ticket
    assert read_grant(derive_key(b"\x03" * 32, "grant"), "cookie", signed, 0) is None
    for forged in (
        signed.replace("shop", "crm", 1),
        signed.replace(".2000.", ".9999.", 1),
        signed[:-1] + ("0" if signed[-1] != "0" else "1"),
        "",
        "a.b.c",
    ):
        assert read_grant(KEY, "cookie", forged, 0) is None


def test_a_grant_with_names_outside_the_ref_pattern_is_refused_even_signed() -> None:
    bad = sign_grant(KEY, "cookie", StudioGrant("Acme", "shop", HASH, 2000))
    assert read_grant(KEY, "cookie", bad, 0) is None


def test_a_studio_proves_its_project_by_database_and_token() -> None:
    token_key = derive_key(b"\x04" * 32, "token")
    shop, crm = project_names("shop").database, project_names("crm").database
    databases = {shop: "shop", crm: "crm"}
    good = f"postgres://postgres:{studio_token(token_key, 'shop')}@studio:5432/{shop}"
    assert studio_login(good, token_key, databases) == StudioLogin("shop", read_only=False)
    assert studio_login(good.replace(f"/{shop}", f"/{crm}"), token_key, databases) is None  # shop's token, crm's db
    assert studio_login(good, token_key, {crm: "crm"}) is None  # shop not active
    assert studio_login(good, derive_key(b"\x05" * 32, "token"), databases) is None
    assert studio_login(f"mysql://postgres:{studio_token(token_key, 'shop')}@s/{shop}", token_key, databases) is None
    assert studio_login("not a url at all", token_key, databases) is None


def test_studios_read_only_user_gets_the_read_only_role_and_its_read_write_user_the_owner() -> None:
    """Studio builds its read-only queries' connection as `supabase_read_only_user` (constants.ts): the gate must
    answer those with the project's read-only login, never its owner; another user name is refused."""
    token_key = derive_key(b"\x04" * 32, "token")
    names = project_names("shop")
    token = studio_token(token_key, "shop")
    databases = {names.database: "shop"}

    def role_for(user: str) -> str | None:
        login = studio_login(f"postgres://{user}:{token}@studio:5432/{names.database}", token_key, databases)
        return None if login is None else login_role(login)

    assert role_for("supabase_read_only_user") == names.readonly
    assert role_for("postgres") == names.owner and role_for("supabase_admin") == names.owner
    assert role_for("owner_shop") is None and role_for("authenticator") is None and role_for("") is None
    url = urlsplit(role_connection("db", 5432, "shop", names.readonly, "pw"))
    assert (url.username, url.path) == (names.readonly, f"/{names.database}")


@pytest.mark.parametrize("password", ["plain", "p@ss:w/rd?#%", "ünï"])
def test_the_owner_connection_names_the_owner_role_and_database_only(password: str) -> None:
    url = urlsplit(owner_connection("nextmavens-postgres", 5432, "shop", password))
    names = project_names("shop")
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "nextmavens-postgres", 5432)
    assert (url.username, unquote(url.password or ""), url.path) == (names.owner, password, f"/{names.database}")


def test_a_projects_studio_gets_only_names_studio_reads_and_no_password_or_metas_key() -> None:
    from nextmavens.upstream.facts import STUDIO_2025_06_30

    env = studio_env("shop", "token-of-shop", "studio-side-key", "http://172.30.0.1:8102")
    assert set(env) <= STUDIO_2025_06_30.env
    assert env["POSTGRES_DB"] == project_names("shop").database and env["POSTGRES_PASSWORD"] == "token-of-shop"
    assert env["PG_META_CRYPTO_KEY"] == "studio-side-key" and env["STUDIO_PG_META_URL"] == "http://172.30.0.1:8102"
