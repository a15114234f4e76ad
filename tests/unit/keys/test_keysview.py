"""What `keys show` prints, from plain values: with the host's edge settings and without them."""

from __future__ import annotations

from nextmavens.keysview import project_access
from tests.support.edgesamples import secrets_for, settings

DSN = "postgresql://postgres:pw@db.internal:5433/postgres"


def test_with_the_edge_settings_the_public_url_and_pooler() -> None:
    s = secrets_for("shop")
    access = project_access("shop", s, DSN, None, settings())
    assert access["api_url"] == "https://shop.api.example.test"
    assert (
        access["pooler_transaction_url"]
        == "postgresql://owner_shop.shop:pw-owner_shop-fixed@api.example.test:6543/shop"
    )
    assert access["pooler_session_url"] == "postgresql://owner_shop.shop:pw-owner_shop-fixed@api.example.test:5432/shop"
    assert access["database_url"] == "postgresql://owner_shop:pw-owner_shop-fixed@db.internal:5433/shop"
    assert access["anon_key"] == s.keys.anon and access["service_role_key"] == s.keys.service_role


def test_a_separate_pooler_host_and_a_hyphenated_ref() -> None:
    access = project_access("my-app", secrets_for("my-app"), DSN, None, settings(pooler_host="db.example.test"))
    assert access["pooler_transaction_url"].startswith("postgresql://owner_my_app.my-app:")
    assert access["pooler_transaction_url"].endswith("@db.example.test:6543/my_app")


def test_without_the_edge_the_api_domain_or_a_hint() -> None:
    assert project_access("shop", secrets_for("shop"), DSN, "api.acme.test")["api_url"] == "https://shop.api.acme.test"
    hint = project_access("shop", secrets_for("shop"), DSN, None)["api_url"]
    assert "NEXTMAVENS_API_DOMAIN" in hint and "--edge-config" in hint
    assert "@db.internal:6543/shop" in project_access("shop", secrets_for("shop"), DSN, None)["pooler_transaction_url"]
