"""A host and a checkout from the previous release (tests/e2e/upgrade.py PREVIOUS_RELEASE) work with this tree
without a manual step: the edge settings file that release wrote is read as it is until the deploy rewrites it
(the reconcile timer may run the new package in between), and a group file still setting a knob this release
dropped is accepted with a notice instead of stopping the deploy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nextmavens.edge.settingsfile import load_edge_host
from nextmavens.host.hostdata import RETIRED_KEYS, HostData, HostDataError, validate_groups, validate_host_data
from tests.support.groupdata import REPO, group_configs

# /etc/nextmavens/edge.yaml as the previous release (2d299ea) rendered it for the sandbox group, verbatim
# (secret file paths aside): every EdgeSettings field spelled out, db_port included.
PREVIOUS_EDGE_FILE = """\
# Managed by NextMavens (tasks/edge.py) from group data; read by `nextmavens apply` through
# NEXTMAVENS_EDGE_CONFIG. No secret values here: secret_files name 0600 files.
issue_certificates: false
secret_files:
  realtime_api_secret: {secret}
settings:
  acme_email: operator@sandbox.test
  acme_webroot: /var/www/acme
  api_domain: api.sandbox.test
  client_max_body_size_mb: 50
  db_host: nextmavens-postgres
  db_port: 5432
  default_server: false
  gotrue_image: nextmavens-local/standin:1
  host_ipv4: 10.0.0.2
  kong_admin_url: http://127.0.0.1:8001
  kong_proxy: 127.0.0.1:8000
  memory_budget_mb: 3072
  platform_network: nextmavens
  pooler_transaction_port: 6543
  postgrest_image: nextmavens-local/standin:1
  realtime_api_url: http://127.0.0.1:4000
  realtime_upstream: nextmavens-realtime:4000
  shared_services_mb:
    evolution-api: 256
    kong: 128
    postgres: 512
    postgres-meta: 192
    realtime: 128
    redis: 128
    studio: 128
    supavisor: 128
  storage_image: nextmavens-local/standin:1
  studio_domain: studio.sandbox.test
  studio_upstream: 127.0.0.1:3000
  supavisor_api_url: http://127.0.0.1:4001
"""


def test_the_previous_release_edge_file_is_read_as_it_is(tmp_path: Path) -> None:
    secret = tmp_path / "realtime-api-secret"
    secret.write_text("s3cret-value\n")
    secret.chmod(0o600)
    path = tmp_path / "edge.yaml"
    path.write_text(PREVIOUS_EDGE_FILE.format(secret=secret))
    edge = load_edge_host(path)
    assert edge.settings.api_domain == "api.sandbox.test"
    assert edge.settings.db_port == 5432  # the old file spelled out the edge's own default; same value
    assert edge.settings.services_dir == "/etc/nextmavens/projects"  # where the old release put them too
    assert edge.settings.shared_services_mb["postgres-meta"] == 192
    assert edge.settings.realtime_api_secret.get_secret_value() == "s3cret-value"
    assert edge.settings.max_projects is None  # the old release did not write it: not sized, nothing refused


@pytest.fixture
def group_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's group data, with the environment the groups need."""
    group_configs(tmp_path, monkeypatch)
    return Path(shutil.copytree(REPO / "group_data", tmp_path / "group_data"))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_retired_knobs_are_ignored_with_a_notice_naming_file_and_key(group_dir: Path) -> None:
    # as the previous release's production.py and all.py set them
    _append(group_dir / "all.py", "backup_retention_days = 14\nproject_memory_mb = {'postgrest': 128}")
    _append(group_dir / "sandbox.py", "platform_domain = 'sandbox.test'")
    notices: list[str] = []
    data = validate_groups(group_dir, ["sandbox"], notices)["sandbox"]
    assert data.api_domain == "api.sandbox.test"
    assert len(notices) == 3, notices
    assert any(n.startswith("group_data/sandbox.py: 'platform_domain' is no longer used") for n in notices)
    assert any(n.startswith("group_data/all.py: 'backup_retention_days' is no longer used") for n in notices)
    assert all(n.endswith("delete it") for n in notices)


def test_a_misspelt_retired_knob_is_still_an_unknown_key(group_dir: Path) -> None:
    _append(group_dir / "sandbox.py", "platform_domian = 'sandbox.test'")
    with pytest.raises(HostDataError, match="group_data/sandbox.py: unknown key 'platform_domian'"):
        validate_groups(group_dir, ["sandbox"])


def test_a_retired_knob_in_pyinfra_host_data_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = group_configs(tmp_path, monkeypatch)["sandbox"]
    merged = {**config.model_dump(), "disk_alert_percent": 85}
    assert validate_host_data(merged, "group_data/sandbox.py") == config


def test_no_retired_knob_is_a_knob_again() -> None:
    """A name coming back as a knob would be dropped before validation, its value silently ignored."""
    assert not set(RETIRED_KEYS) & set(HostData.model_fields)


def test_the_retired_apt_source_becomes_the_wheelhouse_with_a_notice(group_dir: Path) -> None:
    # as the previous release's sandbox.py and all.py set them
    _append(group_dir / "sandbox.py", "nextmavens_deps_from = 'apt'")
    _append(group_dir / "all.py", "nextmavens_apt_deps = ['python3-pydantic']")
    notices: list[str] = []
    data = validate_groups(group_dir, ["sandbox"], notices)["sandbox"]
    assert data.nextmavens_deps_from == "wheelhouse"
    assert any(n.startswith("group_data/all.py: 'nextmavens_apt_deps' is no longer used") for n in notices)
    assert any(
        n.startswith("group_data/sandbox.py: nextmavens_deps_from = 'apt' is now nextmavens_deps_from = 'wheelhouse'")
        for n in notices
    ), notices
    merged = {**data.model_dump(), "nextmavens_deps_from": "apt"}  # pyinfra's host.data holds the file's value
    assert validate_host_data(merged, "group_data/sandbox.py") == data


def test_an_unknown_deps_source_is_still_refused(group_dir: Path) -> None:
    _append(group_dir / "sandbox.py", "nextmavens_deps_from = 'conda'")
    with pytest.raises(HostDataError, match="group_data/sandbox.py: key 'nextmavens_deps_from'"):
        validate_groups(group_dir, ["sandbox"])
