"""The doctor's settings file, rendered from the same group data and stack templates that start the containers:
every shared container by name with the image its stack pins, and whether images are substitutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from nextmavens.doctor.hostfile import (
    DoctorConfigError,
    default_path,
    doctor_file,
    load_doctor_config,
    render_doctor_config,
    shared_containers,
)
from nextmavens.host.hostdata import validate_groups
from nextmavens.host.render import render_stack, template_context
from tasks.stacks import STACKS
from tests.support.repo import REPO

SHARED = {
    "nextmavens-postgres": "postgres",
    "nextmavens-kong": "kong",
    "nextmavens-realtime": "realtime",
    "nextmavens-supavisor": "supavisor",
    "nextmavens-meta": "postgres_meta",
    "nextmavens-studio": "studio",
    "nextmavens-redis": "redis",
    "nextmavens-evolution": "evolution",
}


@pytest.fixture
def group_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    monkeypatch.setenv("NEXTMAVENS_SANDBOX_KEY", str(key))
    monkeypatch.setenv("NEXTMAVENS_DOMAIN", "example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_EMAIL", "ops@example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_PUBKEYS", str(key.with_suffix(".pub")))
    target = tmp_path / "group_data"
    shutil.copytree(REPO / "group_data", target)
    return target


@pytest.mark.parametrize("group", ["production", "sandbox"])
def test_every_shared_container_is_expected_with_its_groups_pin(group_dir: Path, tmp_path: Path, group: str) -> None:
    data = validate_groups(group_dir, [group])[group]
    context = template_context(data)
    text = render_doctor_config(data, [(s, render_stack(s, context)["compose.yaml"]) for s in STACKS])
    document = yaml.safe_load(text)
    pins = data.images.model_dump()
    assert document["shared_containers"] == {name: pins[key] for name, key in SHARED.items()}
    assert document["images_are_substitutes"] is (group == "sandbox")
    assert document["postgres_meta_url"] == f"http://127.0.0.1:{data.loopback_ports.postgres_meta}"
    assert document["evolution_url"] == f"http://127.0.0.1:{data.loopback_ports.evolution}"
    assert document["platform_unit"] == "nextmavens-platform.service"
    assert document["platform_url"] == f"http://127.0.0.1:{data.loopback_ports.platform}"
    assert str(doctor_file(data)) == "/etc/nextmavens/doctor.yaml"  # beside edge_config_file
    path = tmp_path / "doctor.yaml"
    path.write_text(text)
    assert load_doctor_config(path).images_are_substitutes is (group == "sandbox")


def test_a_stack_service_without_container_name_is_refused() -> None:
    with pytest.raises(ValueError, match="stacks/x: service web has no container_name"):
        shared_containers([("x", "services:\n  web:\n    image: nginx:1.27\n")])


def test_the_file_is_found_beside_the_edge_settings_unless_named(tmp_path: Path) -> None:
    assert default_path({"NEXTMAVENS_EDGE_CONFIG": "/etc/nextmavens/edge.yaml"}) == Path("/etc/nextmavens/doctor.yaml")
    assert default_path({"NEXTMAVENS_DOCTOR_CONFIG": "/x/d.yaml", "NEXTMAVENS_EDGE_CONFIG": "/e.yaml"}) == Path(
        "/x/d.yaml"
    )
    with pytest.raises(DoctorConfigError, match="cannot read the doctor's settings"):
        load_doctor_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("shared_containers: {}\nunknown: 1\n")
    with pytest.raises(DoctorConfigError, match="unknown"):
        load_doctor_config(bad)
