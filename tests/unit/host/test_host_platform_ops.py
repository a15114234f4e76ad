"""The two operations the platform service's task adds, their commands run for real in a shell: a secret copied
with a prefix (the pgpass line) and checked by the fact that decides whether to copy it again, and a sudoers
drop-in installed only when the real `visudo -cf` accepts it."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from nextmavens.host import commands, facts, operations
from tests.support.localnginx import need
from tests.unit.host.test_host_operations import run_op

PREFIX = "127.0.0.1:5432:*:postgres:"


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)


def test_a_prefixed_secret_copy_is_written_then_found_current(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OTHER=1\nPOSTGRES_PASSWORD=0a1b2c\n")
    dest = str(tmp_path / "platform" / "pgpass")
    pairs = f"{dest}=POSTGRES_PASSWORD={PREFIX}\n"
    fact = facts.SecretCopies().command(secrets_file=str(secrets), files=pairs)
    assert sh(fact).stdout.split() == ["stale", dest]
    written, _ = run_op(
        operations.secret_copies,
        {facts.SecretCopies: {}},
        secrets_file=str(secrets),
        files={dest: "POSTGRES_PASSWORD"},
        prefixes={dest: PREFIX},
    )
    (command,) = written
    assert "0a1b2c" not in command  # the value never travels in a command
    assert sh(command).returncode == 0
    assert Path(dest).read_text() == f"{PREFIX}0a1b2c\n"
    assert stat.S_IMODE(Path(dest).stat().st_mode) == 0o600
    assert sh(fact).stdout.split() == ["ok", dest]
    secrets.write_text("POSTGRES_PASSWORD=ffff\n")  # a new password: the copy is stale again
    assert sh(fact).stdout.split() == ["stale", dest]


def test_a_copy_without_its_key_is_never_written(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OTHER=1\n")
    dest = tmp_path / "pgpass"
    written, _ = run_op(
        operations.secret_copies,
        {facts.SecretCopies: {}},
        secrets_file=str(secrets),
        files={str(dest): "POSTGRES_PASSWORD"},
        prefixes={str(dest): PREFIX},
    )
    assert sh(written[0]).returncode != 0 and not dest.exists()


def test_visudo_decides_whether_a_sudoers_file_is_installed(tmp_path: Path) -> None:
    need("visudo")
    dropin, staged = tmp_path / "nextmavens-platform", tmp_path / ".nextmavens-platform.staged"
    staged.write_text("nextmavens-platform ALL=(root) NOPASSWD: /opt/x apply --yes --json\n")
    assert sh(commands.sudoers_install_command(str(staged), str(dropin))).returncode == 0
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o440 and not staged.exists()
    staged.write_text("nextmavens-platform ALL=(root NOPASSWD /opt/x\n")  # broken
    refused = sh(commands.sudoers_install_command(str(staged), str(dropin)))
    assert refused.returncode == 1 and "visudo refused" in refused.stderr
    assert dropin.read_text().endswith("apply --yes --json\n") and not staged.exists()


def test_a_service_user_is_taken_out_of_every_other_group() -> None:
    from pyinfra.facts.server import Users

    user = "nextmavens-platform"
    commands_, host = run_op(operations.only_own_group, {Users: {user: {"group": user, "groups": []}}}, user=user)
    assert commands_ == [] and host.noops
    commands_, _ = run_op(operations.only_own_group, {Users: {}}, user=user)  # created later in this run
    assert commands_ == []
    commands_, _ = run_op(
        operations.only_own_group, {Users: {user: {"group": user, "groups": ["docker", "sudo"]}}}, user=user
    )
    assert commands_ == ["usermod -G '' nextmavens-platform"]


def test_a_private_copy_is_made_for_its_owner_and_then_found_current(tmp_path: Path) -> None:
    src, dest = tmp_path / "master.key", tmp_path / "copy" / "master.key"
    dest.parent.mkdir()
    fact = facts.PrivateCopy()
    check = fact.command(src=str(src), dest=str(dest), owner="root")
    assert fact.process(sh(check).stdout.splitlines()) == "missing"
    src.write_bytes(b"k" * 32)
    assert fact.process(sh(check).stdout.splitlines()) == "stale"
    written, _ = run_op(
        operations.private_copy, {facts.PrivateCopy: "stale"}, src=str(src), dest=str(dest), owner="root"
    )
    assert sh(written[0]).returncode == 0 and dest.read_bytes() == b"k" * 32
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert fact.process(sh(check).stdout.splitlines()) == "ok"
    src.write_bytes(b"n" * 32)  # a recovered key: copied again
    assert fact.process(sh(check).stdout.splitlines()) == "stale"
    for state in ("ok", "missing"):
        assert run_op(operations.private_copy, {facts.PrivateCopy: state}, src="/a", dest="/b", owner="x")[0] == []
