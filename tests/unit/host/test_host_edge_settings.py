"""The edge's settings as the deploy renders them from the repository's group data (all.py + sandbox.py /
production.py), read back the way `nextmavens apply --edge-config` reads them, and the rule that keeps one
source per default: a field the host data sets has no default in EdgeSettings, and the host sets no other."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from nextmavens.edge.memory import project_footprint, projects_that_fit
from nextmavens.edge.settings import EdgeSettings
from nextmavens.edge.settingsfile import EdgeConfigError, EdgeHostConfig, load_edge_host
from nextmavens.host.edgeconfig import edge_settings, render_edge_config, secret_files
from nextmavens.host.hostdata import HostData
from nextmavens.manifest.models import ProjectManifest
from tests.support.groupdata import REPO, group_configs

# Host-set fields with a default only so the previous release's edge file still loads (its default means "not
# sized", never a second value for the knob): the host data still writes them, and nothing else defaults them.
HOST_SET_UPGRADE_DEFAULTS = {
    "max_projects": None,
    "evolution_api_url": None,
    "evolution_hooks_url": None,
    "evolution_hooks_port": None,
    "evolution_hooks_source": None,
    "platform_domain": None,
    "platform_upstream": None,
    "metrics_log": None,
    # Studio for a project (None: off, and an edge file of the release before)
    "project_studio_domain": None,
    "studio_meta_gate_listen": None,
    "studio_meta_gate_source": None,
    "postgres_meta_upstream": None,
    "studio_image": None,
    "project_studio_memory_mb": None,
    "project_studio_network": None,
    "studio_meta_gate_url": None,
}
HOST_SET = {name for name, field in EdgeSettings.model_fields.items() if field.is_required()} | set(
    HOST_SET_UPGRADE_DEFAULTS
)


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, HostData]:
    return group_configs(tmp_path, monkeypatch)


@pytest.mark.parametrize("group", ["sandbox", "production"])
def test_group_data_renders_through_the_typed_model_and_reads_back(configs, group: str) -> None:
    config = configs[group]
    settings = edge_settings(config)
    document = yaml.safe_load(render_edge_config(config))
    read = EdgeHostConfig.model_validate(document)
    assert read.settings == settings
    assert set(document["settings"]) == HOST_SET  # only what the host decides is written down
    assert set(document["secret_files"]) == set(secret_files(config))
    assert read.issue_certificates is config.edge_issue_certificates


@pytest.mark.parametrize("group", ["sandbox", "production"])
def test_edge_settings_follow_the_host_data(configs, group: str) -> None:
    config = configs[group]
    settings = edge_settings(config)
    ports = config.loopback_ports
    assert settings.memory_budget_mb == config.memory_budget_mb
    assert settings.shared_services_mb["postgres-meta"] == config.memory_limits_mb["postgres_meta"]
    studios = config.project_studio_max_running * config.memory_limits_mb["studio"] if group == "production" else 0
    assert sum(settings.shared_services_mb.values()) == sum(config.memory_limits_mb.values()) + studios
    assert settings.realtime_api_url == f"http://127.0.0.1:{ports.realtime}"
    assert settings.supavisor_api_url == f"http://127.0.0.1:{ports.supavisor_api}"
    assert settings.pooler_transaction_port == ports.supavisor_pooler
    assert settings.kong_admin_url == f"http://127.0.0.1:{ports.kong_admin}"
    assert (settings.postgrest_image, settings.gotrue_image, settings.storage_image) == (
        config.images.postgrest,
        config.images.gotrue,
        config.images.storage_api,
    )
    assert settings.api_domain == config.api_domain and settings.acme_email == config.admin_email
    assert settings.max_projects == config.max_projects
    assert settings.platform_domain == config.platform_service_domain
    assert settings.platform_upstream == f"127.0.0.1:{ports.platform}"


def test_every_edge_setting_has_exactly_one_default_source(configs) -> None:
    """Host-set fields: no default in EdgeSettings (group_data/ is their source). Others: the host leaves them."""
    for config in configs.values():
        assert edge_settings(config).model_fields_set == HOST_SET
    for name, field in EdgeSettings.model_fields.items():
        if name in HOST_SET_UPGRADE_DEFAULTS:
            assert field.default is HOST_SET_UPGRADE_DEFAULTS[name], name
        elif name in HOST_SET:
            assert field.is_required(), name
        else:
            assert not field.is_required(), name
    assert {"memory_budget_mb", "shared_services_mb", "realtime_api_url", "supavisor_api_url"} <= HOST_SET


def test_a_settings_file_without_a_host_set_field_is_refused_naming_it(configs, tmp_path: Path) -> None:
    document = yaml.safe_load(render_edge_config(configs["sandbox"]))
    del document["settings"]["memory_budget_mb"]
    document["secret_files"] = {}
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(document))
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(EdgeConfigError, match=r"settings\.memory_budget_mb: Field required"):
        load_edge_host(path)


def test_the_readme_states_how_many_projects_the_production_budget_admits(configs) -> None:
    settings = edge_settings(configs["production"])
    probe = {"ref": "probe", "name": "Probe", "auth": {"site_url": "https://probe.app.test"}}
    rest_auth = project_footprint(ProjectManifest.model_validate(probe)).total_mb
    storage = project_footprint(ProjectManifest.model_validate({**probe, "storage": {"enabled": True}})).total_mb
    fit, fit_storage = projects_that_fit(settings, rest_auth), projects_that_fit(settings, storage)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`memory_budget_mb = {settings.memory_budget_mb}`" in readme
    assert f"**{fit} projects fit, or {fit_storage} with Storage**" in readme
    assert f"costs {rest_auth} MiB" in readme and f"too {storage} MiB" in readme


def test_production_renders_studio_for_a_project_on_the_studio_name_and_the_sandbox_leaves_it_off(configs) -> None:
    """Group data decides it: production's project_studio_domain is its Studio name (the per-project Studio replaces
    the operator's basic-auth one there), the sandbox sets none and keeps the operator's Studio as it is."""
    production, sandbox = configs["production"], configs["sandbox"]
    settings = edge_settings(production)
    ports = production.loopback_ports
    assert settings.project_studio_domain == production.studio_domain == "studio.example.com"
    assert settings.postgres_meta_upstream == f"127.0.0.1:{ports.postgres_meta}"
    assert settings.studio_meta_gate_listen == str(production.studio_meta_gate_port)
    assert settings.studio_meta_gate_source == production.project_studio_subnet
    assert settings.studio_meta_gate_url == f"http://10.254.214.1:{production.studio_meta_gate_port}"
    assert settings.studio_image == production.images.studio
    assert settings.project_studio_memory_mb == production.memory_limits_mb["studio"]
    assert settings.project_studio_network == production.project_studio_network
    assert settings.shared_services_mb["project-studios"] == 2 * production.memory_limits_mb["studio"]
    off = edge_settings(sandbox)
    assert off.project_studio_domain is None and off.studio_image is None and "project-studios" not in (
        off.shared_services_mb
    )
