"""Host data for the template tests: the repository's sandbox and production groups."""

from pathlib import Path

import pytest

from nextmavens.host.hostdata import HostData, validate_groups
from tests.support.repo import REPO


def group_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, HostData]:
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    admin = tmp_path / "admin.pub"
    admin.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKey admin\n")
    monkeypatch.setenv("NEXTMAVENS_SANDBOX_KEY", str(key))
    monkeypatch.setenv("NEXTMAVENS_DOMAIN", "example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_EMAIL", "ops@example.com")
    monkeypatch.setenv("NEXTMAVENS_ADMIN_PUBKEYS", str(admin))
    return validate_groups(REPO / "group_data", ["sandbox", "production"])
