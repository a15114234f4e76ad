"""Contract tests of the admin clients against local stand-ins of Supavisor's, Realtime's and Kong's
documented APIs (the real services cannot run here): create, no-op on the second run, update on change."""

from __future__ import annotations

import json

import pytest

from nextmavens.edge.clients.http import AdminApiError, check_internal
from nextmavens.edge.clients.kong_admin import KongAdmin, KongLoadError
from nextmavens.edge.clients.tenants import RealtimeTenants, SupavisorTenants
from nextmavens.edge.kong import render_kong
from nextmavens.naming import project_names
from tests.support.edgesamples import manifest, project, sample_projects, secrets_for, settings
from tests.support.standins import (
    SUPABASE_KONG_PLUGINS,
    KongStandIn,
    RealtimeStandIn,
    SupavisorStandIn,
    serve,
)

SUPAVISOR_SECRET = "platform-supavisor-secret-0123456789abcdef"
REALTIME_SECRET = "platform-realtime-secret-0123456789abcdef"


def test_contract_supavisor_create_noop_update():
    standin = SupavisorStandIn(SUPAVISOR_SECRET)
    with serve(standin) as url:
        client = SupavisorTenants(settings(supavisor_api_url=url))
        shop = manifest("shop", database={"pooler": {"size": 7, "mode": "transaction"}})
        assert client.ensure(shop).action == "created"
        stored = standin.tenants["shop"]
        assert stored["db_database"] == "shop" and stored["require_user"] is False
        assert stored["auth_query"] == "SELECT * FROM pgbouncer.get_auth($1)"
        assert stored["users"] == [
            {
                "db_user": "pgbouncer",
                "db_password": "pgbouncer-password-fixed",
                "mode_type": "transaction",
                "pool_size": 7,
                "is_manager": True,
            }
        ]
        writes = len(standin.writes())
        assert client.ensure(shop).action == "unchanged"
        assert len(standin.writes()) == writes  # read, compared, nothing written
        bigger = manifest("shop", database={"pooler": {"size": 12, "mode": "session"}})
        outcome = client.ensure(bigger)
        assert outcome.action == "updated"
        assert "default_pool_size: 7 -> 12" in outcome.differences and "users changed" in outcome.differences
        assert standin.tenants["shop"]["users"][0]["mode_type"] == "session"
        assert client.ensure(bigger).action == "unchanged"
        assert client.ensure(bigger, force=True).action == "updated"


def test_contract_supavisor_rejects_a_wrong_platform_secret():
    standin = SupavisorStandIn(SUPAVISOR_SECRET)
    with serve(standin) as url:
        client = SupavisorTenants(settings(supavisor_api_url=url, supavisor_api_secret="x" * 40))
        with pytest.raises(AdminApiError, match="401"):
            client.ensure(manifest("shop"))
        assert standin.tenants == {}


def test_contract_realtime_create_noop_update_with_own_slot():
    standin = RealtimeStandIn(REALTIME_SECRET)
    with serve(standin) as url:
        client = RealtimeTenants(settings(realtime_api_url=url))
        shop, secrets = manifest("shop"), secrets_for("shop")
        assert client.ensure(shop, secrets).action == "created"
        stored = standin.tenants["shop"]
        assert stored["jwt_secret"] == secrets.jwt_secret
        (extension,) = stored["extensions"]
        assert extension["type"] == "postgres_cdc_rls"
        assert extension["settings"]["slot_name"] == project_names("shop").realtime_slot
        assert extension["settings"]["db_name"] == "shop"
        assert secrets.jwt_secret not in stored["name"]
        writes = len(standin.writes())
        assert client.ensure(shop, secrets).action == "unchanged"
        assert len(standin.writes()) == writes
        # a rotated JWT secret is invisible in Realtime's view, but the digest in the name catches it
        rotated = secrets_for("shop-two")
        outcome = client.ensure(shop, rotated)
        assert outcome.action == "updated" and outcome.differences == ["configuration digest changed"]
        assert standin.tenants["shop"]["jwt_secret"] == rotated.jwt_secret
        assert client.ensure(shop, rotated).action == "unchanged"


def test_contract_realtime_every_project_gets_a_distinct_slot():
    standin = RealtimeStandIn(REALTIME_SECRET)
    with serve(standin) as url:
        client = RealtimeTenants(settings(realtime_api_url=url))
        for ref in ("shop", "crm", "my-app"):
            client.ensure(manifest(ref), secrets_for(ref))
        slots = {t["extensions"][0]["settings"]["slot_name"] for t in standin.tenants.values()}
        assert len(slots) == 3


def test_contract_kong_load_noop_and_change():
    standin = KongStandIn()
    with serve(standin) as url:
        admin = KongAdmin(url)
        config = render_kong(settings(), sample_projects())
        first = admin.load(config)
        assert first.changed and first.configuration_hash == standin.hash
        assert json.loads(standin.config)["_format_version"] == "2.1"  # what Kong 2.8.1 accepts
        assert admin.load(config).changed is False  # check_hash: identical config is not reloaded
        assert standin.loads == 1
        changed = render_kong(settings(), [*sample_projects(), project("newapp")])
        assert admin.load(changed).changed is True
        assert standin.loads == 2


def test_contract_kong_refusal_keeps_running_config_and_hides_keys(tmp_path):
    standin = KongStandIn(kong_plugins=SUPABASE_KONG_PLUGINS)  # Supabase's list: no rate-limiting
    with serve(standin) as url:
        admin = KongAdmin(url, state_file=tmp_path / "kong-last-good.json")
        config = render_kong(settings(), sample_projects())
        with pytest.raises(KongLoadError) as info:
            admin.load(config)
        message = str(info.value)
        assert "refused" in message and "running config unchanged" in message
        for consumer in config.consumers:
            for credential in consumer.keyauth_credentials:
                assert credential.key not in message
        assert standin.config is None and standin.loads == 0
        assert not (tmp_path / "kong-last-good.json").exists()


def test_contract_kong_unreachable_is_reported(tmp_path):
    with serve(KongStandIn()) as url:
        pass  # closed: nothing listens any more
    with pytest.raises(KongLoadError, match="not reached"):
        KongAdmin(url, timeout=2).load(render_kong(settings(), sample_projects()))


def test_kong_state_file_is_private(tmp_path):
    with serve(KongStandIn()) as url:
        KongAdmin(url, state_file=tmp_path / "kong.json").load(render_kong(settings(), sample_projects()))
    assert (tmp_path / "kong.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("url", ["http://93.184.216.34:8001", "http://kong.example.com:8001", "ftp://127.0.0.1"])
def test_admin_urls_must_be_host_internal(url):
    with pytest.raises(AdminApiError):
        check_internal(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8001", "http://kong:8001", "http://172.18.0.5:8001"])
def test_internal_admin_urls_are_accepted(url):
    assert check_internal(url) == url


def test_contract_kong_busy_is_retried_a_bounded_number_of_times():
    standin = KongStandIn()
    with serve(standin) as url:
        standin.busy = 1
        assert KongAdmin(url, busy_wait_s=0.01).load(render_kong(settings(), sample_projects())).changed
        standin.busy = 5
        with pytest.raises(KongLoadError, match="429"):
            KongAdmin(url, busy_wait_s=0.01, max_attempts=3).load(render_kong(settings(), [project("other")]))
        assert standin.busy == 2 and standin.loads == 1
