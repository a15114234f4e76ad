"""Per-project compose rendering and memory admission, with plain values."""

from __future__ import annotations

import stat

import yaml

from nextmavens.edge.memory import (
    admit,
    project_footprint,
    projects_that_fit,
)
from nextmavens.edge.services import compose_command, render_project_services, write_project_files
from tests.support.edgesamples import BUDGET_MB, SHARED_MB, manifest, sample_projects, secrets_for, settings


def shop():
    p = sample_projects()[0]
    return p.manifest, p.secrets


def test_compose_has_no_secret_and_no_published_port():
    m, s = shop()
    rendered = render_project_services(settings(), m, s)
    for secret in [s.jwt_secret, s.keys.anon, s.keys.service_role, *s.passwords.values()]:
        assert secret not in rendered.compose
    document = yaml.safe_load(rendered.compose)
    assert document["name"] == "nm-shop"
    assert set(document["services"]) == {"rest", "auth", "storage"}
    for name, service in document["services"].items():
        assert "ports" not in service, name
        assert list(service["networks"]) == ["nextmavens"]
        assert service["networks"]["nextmavens"]["aliases"] == [f"{name}-shop"]
        assert service["mem_limit"].endswith("m") and "healthcheck" in service
        assert service["env_file"] == [f"{name}.env"]
    assert document["networks"] == {"nextmavens": {"external": True}}


def test_services_use_the_projects_own_roles_database_and_small_pools():
    m, s = shop()
    env = render_project_services(settings(), m, s).env_files
    assert env["rest.env"]["PGRST_DB_URI"] == "postgres://authenticator_shop:pw-authenticator_shop-fixed@db:5432/shop"
    assert env["rest.env"]["PGRST_DB_POOL"] == "3"
    assert env["rest.env"]["PGRST_JWT_SECRET"] == s.jwt_secret
    assert env["auth.env"]["GOTRUE_DB_DATABASE_URL"] == (
        "postgres://auth_admin_shop:pw-auth_admin_shop-fixed@db:5432/shop"
    )
    assert env["auth.env"]["GOTRUE_DB_MAX_POOL_SIZE"] == "3"
    assert env["auth.env"]["API_EXTERNAL_URL"] == "https://shop.api.example.test"
    assert env["auth.env"]["GOTRUE_SITE_URL"] == "https://shop.acme.test"
    assert env["auth.env"]["GOTRUE_URI_ALLOW_LIST"] == "https://shop.acme.test/cb"
    assert env["storage.env"]["DATABASE_URL"].startswith("postgres://storage_admin_shop:")
    assert env["storage.env"]["TENANT_ID"] == "shop"


def test_passwords_are_url_quoted_in_uris():
    m = manifest("odd")
    s = secrets_for("odd")
    s.passwords["authenticator_odd"] = "p@ss:w/rd"
    env = render_project_services(settings(), m, s).env_files
    assert env["rest.env"]["PGRST_DB_URI"] == "postgres://authenticator_odd:p%40ss%3Aw%2Frd@db:5432/odd"


def test_postgrest_serves_the_whatsapp_schema_only_to_projects_with_instances():
    def schemas(**fields: object) -> list[str]:
        env = render_project_services(settings(), manifest("crm", **fields), secrets_for("crm")).env_files
        return env["rest.env"]["PGRST_DB_SCHEMAS"].split(",")

    assert "whatsapp" not in schemas()
    with_instance = schemas(whatsapp={"instances": [{"name": "main"}]})
    assert with_instance[0] == "public" and with_instance[-1] == "whatsapp"  # never the default schema


def test_no_storage_service_unless_enabled():
    rendered = render_project_services(settings(), manifest("crm"), secrets_for("crm"))
    assert set(yaml.safe_load(rendered.compose)["services"]) == {"rest", "auth"}
    assert set(rendered.env_files) == {"rest.env", "auth.env"}


def test_env_files_are_written_0600_and_rewrite_only_changes(tmp_path):
    m, s = shop()
    rendered = render_project_services(settings(), m, s)
    changed = write_project_files(tmp_path, rendered)
    assert {p.name for p in changed} == {"compose.yaml", "rest.env", "auth.env", "storage.env"}
    for name in ("rest.env", "auth.env", "storage.env"):
        assert stat.S_IMODE((tmp_path / "shop" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "shop").stat().st_mode) == 0o700
    assert write_project_files(tmp_path, rendered) == []


def test_compose_commands_never_remove_data():
    active = compose_command(__import__("pathlib").Path("/p"), manifest("one"))
    assert active == [
        "docker", "compose", "-p", "nm-one", "-f", "/p/one/compose.yaml",
        "up", "-d", "--remove-orphans", "--wait", "--wait-timeout", "120",
    ]  # fmt: skip
    for state in ("suspended", "absent"):
        argv = compose_command(__import__("pathlib").Path("/p"), manifest("one", state=state))
        assert argv[-1] == "stop" and "down" not in argv and "-v" not in argv


def test_footprints():
    assert project_footprint(manifest("one")).total_mb == 120 + 15 + 34 + 15
    assert project_footprint(manifest("one", storage={"enabled": True})).total_mb == 184 + 125 + 15
    assert project_footprint(manifest("one", resources={"memory_mb": 512})).total_mb == 512
    assert project_footprint(manifest("one", state="suspended")).total_mb == 0


def test_admission_within_budget():
    admission = admit(settings(), [p.manifest for p in sample_projects()])
    assert admission.ok and admission.admitted == ("crm", "shop")


def test_over_budget_is_refused_with_what_fits():
    config = settings(memory_budget_mb=SHARED_MB + 184 * 2 + 100)
    manifests = [manifest(ref) for ref in ("aaa", "bbb", "ccc", "ddd")]
    admission = admit(config, manifests, running={"ddd"})
    assert not admission.ok
    text = admission.message()
    assert f"4 active projects need 736 MiB; {184 * 2 + 100} MiB available" in text
    assert "What fits: 2 projects (368 MiB: ddd, aaa)" in text
    assert "does not fit: bbb (184 MiB), ccc (184 MiB)" in text
    assert "nothing was changed" in text


def test_suspended_projects_do_not_count():
    config = settings(memory_budget_mb=SHARED_MB + 184)
    assert admit(config, [manifest("one"), manifest("two", state="suspended")]).ok


def test_projects_that_fit_8gb():
    assert projects_that_fit(settings(), 184) == (BUDGET_MB - SHARED_MB) // 184
