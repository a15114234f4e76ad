"""Host data validation: errors name the group file and the key; nothing else runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nextmavens.host.hostdata import HostDataError, validate_groups
from tests.support.repo import REPO


@pytest.fixture
def group_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real group_data with a sandbox key present."""
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    monkeypatch.setenv("NEXTMAVENS_SANDBOX_KEY", str(key))
    target = tmp_path / "group_data"
    shutil.copytree(REPO / "group_data", target)
    return target


def _with(group_dir: Path, group: str, text: str) -> Path:
    path = group_dir / f"{group}.py"
    path.write_text(path.read_text() + "\n" + text + "\n")
    return path


def _error(group_dir: Path, group: str = "sandbox") -> str:
    with pytest.raises(HostDataError) as err:
        validate_groups(group_dir, [group])
    return str(err.value)


def test_the_repository_sandbox_group_is_valid(group_dir: Path) -> None:
    data = validate_groups(group_dir, ["sandbox"])["sandbox"]
    assert data.images_are_substitutes and data.image_pull_policy == "never"
    assert data.images.redis == "nextmavens-local/redis:7"


def test_production_is_valid_with_its_environment(group_dir: Path, monkeypatch, tmp_path: Path) -> None:
    keys = tmp_path / "admin.pub"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKey admin\n")
    monkeypatch.setenv("NEXTMAVENS_DOMAIN", "example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_EMAIL", "ops@example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_PUBKEYS", str(keys))
    data = validate_groups(group_dir, ["production"])["production"]
    assert data.api_domain == "api.example.com"
    assert data.images.evolution == "evoapicloud/evolution-api:v2.3.7"
    assert data.images.redis == "redis:7-alpine"
    assert not data.images_are_substitutes


def test_unknown_key_names_file_and_key(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "ssh_prot = 2222")
    assert "group_data/sandbox.py: unknown key 'ssh_prot'" in _error(group_dir)


def test_wrong_type_names_file_and_key(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "ssh_port = '2222'")
    assert "group_data/sandbox.py: key 'ssh_port'" in _error(group_dir)


def test_port_out_of_range(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "ssh_port = 70000")
    message = _error(group_dir)
    assert "group_data/sandbox.py: key 'ssh_port'" in message and "65535" in message


def test_firewall_rule_port_out_of_range(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "firewall_allowed_ports = ['80/tcp', '99999/tcp']")
    assert "group_data/sandbox.py: key 'firewall_allowed_ports.1'" in _error(group_dir)


@pytest.mark.parametrize("ref", ["redis", "redis:latest", "nextmavens-local/redis", "Redis:7"])
def test_unpinned_images_are_refused(group_dir: Path, ref: str) -> None:
    _with(group_dir, "sandbox", f"images = {{**images, 'redis': {ref!r}}}")
    assert "group_data/sandbox.py: key 'images.redis'" in _error(group_dir)


def test_digest_pins_are_accepted(group_dir: Path) -> None:
    digest = "redis@sha256:" + "a" * 64
    _with(group_dir, "sandbox", f"images = {{**images, 'redis': {digest!r}}}")
    assert validate_groups(group_dir, ["sandbox"])["sandbox"].images.redis == digest


def test_missing_required_value_names_file_and_key(group_dir: Path, monkeypatch) -> None:
    for name in ("NEXTMAVENS_DOMAIN", "NEXTMAVENS_ADMIN_EMAIL", "NEXTMAVENS_ADMIN_PUBKEYS"):
        monkeypatch.delenv(name, raising=False)
    message = _error(group_dir, "production")
    assert "group_data/production.py: required key 'api_domain' is not set" in message
    assert "group_data/production.py: required key 'admin_ssh_public_keys' is not set" in message


def test_key_missing_from_all_py_is_reported(group_dir: Path) -> None:
    all_py = group_dir / "all.py"
    all_py.write_text(all_py.read_text().replace('timezone = "Etc/UTC"', ""))
    assert "group_data/all.py: required key 'timezone' is missing" in _error(group_dir)


def test_memory_limits_over_budget(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "memory_budget_mb = 600")
    assert "memory_limits_mb adds up to" in _error(group_dir)


def test_substitutes_require_pull_policy_never(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "image_pull_policy = 'missing'")
    assert "image_pull_policy='never'" in _error(group_dir)


def test_unknown_pyinfra_default_is_refused(group_dir: Path) -> None:
    _with(group_dir, "sandbox", "_sudoo = True")
    assert "sandbox.py: unknown pyinfra default '_sudoo'" in _error(group_dir)


def test_inventory_refuses_to_start_and_names_the_problem(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")}
    env.update(NEXTMAVENS_PROD_HOST="192.0.2.10", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('inventory.py')"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Host data is invalid; nothing was run" in result.stderr
    assert "group_data/production.py: required key 'api_domain' is not set" in result.stderr


def test_inventory_without_hosts_validates_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMAVENS_")}
    env["PYTHONPATH"] = str(REPO)
    code = "import runpy; g = runpy.run_path('inventory.py'); print(g['production'], g['sandbox'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[] []"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('evolution_hooks_subnet = "10.1.1.0/31"', "'evolution_hooks_subnet': Value error, '10.1.1.0/31' holds fewer"),
        ('evolution_hooks_subnet = "10.1.1.1/29"', "'evolution_hooks_subnet': Value error, 10.1.1.1/29 has host bits"),
        ("evolution_hooks_port = 8100", "evolution_hooks_port 8100 is taken by loopback_ports.platform"),
        ("evolution_hooks_port = 443", "evolution_hooks_port 443 is taken by https"),
        ('evolution_hooks_network = "nextmavens"', "evolution_hooks_network must differ from docker_network"),
        ('evolution_hooks_url = "http://host.docker.internal:8100"', "must use evolution_hooks_port 8101"),
    ],
)
def test_host_data_that_would_break_evolution_s_webhook_path_is_refused(
    group_dir: Path, text: str, message: str
) -> None:
    _with(group_dir, "sandbox", text)
    assert message in _error(group_dir)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('project_studio_subnet = "10.1.1.0/31"', "'project_studio_subnet': Value error, '10.1.1.0/31' cannot hold"),
        (
            'project_studio_domain = "studio.sandbox.test"\nproject_studio_subnet = "10.1.1.0/30"\n'
            "project_studio_max_running = 2",
            "'10.1.1.0/30' cannot hold the host and 2 Studios",
        ),
        (
            'project_studio_domain = "studio.sandbox.test"\nproject_studio_network = "nextmavens-hooks"',
            "project_studio_network must be a network of its own",
        ),
        (
            'project_studio_domain = "studio.sandbox.test"\nstudio_meta_gate_port = 8101',
            "studio_meta_gate_port 8101 is taken by evolution_hooks_port",
        ),
        (
            'project_studio_domain = "platform.sandbox.test"',
            "project_studio_domain must differ from api_domain and platform_service_domain",
        ),
        (
            'project_studio_domain = "studio.sandbox.test"\nproject_studio_max_running = 20',
            "project_studio_max_running Studios (2560 MiB) add up to more than memory_budget_mb",
        ),
    ],
)
def test_host_data_that_would_break_studio_for_a_project_is_refused(group_dir: Path, text: str, message: str) -> None:
    _with(group_dir, "sandbox", text)
    assert message in _error(group_dir)
