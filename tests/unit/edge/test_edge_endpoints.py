"""What `keys show` prints: API URL, pooled connection strings (transaction and session), keys."""

from __future__ import annotations

from nextmavens.edge.endpoints import project_endpoints
from tests.unit.edge.fixtures import manifest, secrets_for, settings


def test_endpoints_of_a_project():
    s = secrets_for("shop")
    endpoints = project_endpoints(settings(), manifest("shop", domains=["api.shop.acme.test"]), s)
    assert endpoints.api_url == "https://shop.api.example.test"
    assert endpoints.custom_urls == ("https://api.shop.acme.test",)
    assert endpoints.pooled_transaction == (
        "postgresql://owner_shop.shop:pw-owner_shop-fixed@api.example.test:6543/shop"
    )
    assert endpoints.pooled_session == "postgresql://owner_shop.shop:pw-owner_shop-fixed@api.example.test:5432/shop"
    assert endpoints.anon_key == s.keys.anon and endpoints.service_role_key == s.keys.service_role
    assert s.keys.anon not in repr(endpoints) and "pw-owner" not in repr(endpoints)
    assert any(s.keys.service_role in line for line in endpoints.lines())


def test_hyphenated_ref_uses_pg_names_and_tenant_ref():
    endpoints = project_endpoints(settings(pooler_host="db.example.test"), manifest("my-app"), secrets_for("my-app"))
    assert endpoints.pooled_transaction.startswith("postgresql://owner_my_app.my-app:")
    assert endpoints.pooled_transaction.endswith("@db.example.test:6543/my_app")
