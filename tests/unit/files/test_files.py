"""The one secret-file reader and the one atomic writer (nextmavens.files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nextmavens import files
from nextmavens.files import SecretFileError, create_private_file, read_secret_file, write_atomic


def test_secret_file_is_read_only_when_private_and_not_empty(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    with pytest.raises(SecretFileError, match=f"token file {secret} does not exist"):
        read_secret_file(secret, "token file")
    secret.write_text("  s3cret\n")
    secret.chmod(0o640)
    with pytest.raises(SecretFileError, match=r"mode 0640, must be 0600\); run: chmod 600") as info:
        read_secret_file(secret)
    assert "s3cret" not in str(info.value)
    secret.chmod(0o600)
    assert read_secret_file(secret) == "s3cret"
    secret.write_text("\n")
    with pytest.raises(SecretFileError, match="is empty"):
        read_secret_file(secret)


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_mode_is_set_before_any_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int) -> None:
    seen: list[int] = []
    real_write = os.write

    def spying_write(fd: int, data: bytes) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(files.os, "write", spying_write)
    old = os.umask(0o077)  # a strict umask must not narrow the mode asked for
    try:
        write_atomic(tmp_path / "out", "content", mode)
    finally:
        os.umask(old)
    assert seen and set(seen) == {mode}
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == mode
    assert (tmp_path / "out").read_text() == "content"


def test_an_error_leaves_the_old_file_and_no_partial_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, "old")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new and longer")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "master.key"
    write_atomic(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"


def test_private_file_is_reserved_once(tmp_path: Path) -> None:
    target = tmp_path / "dump"
    create_private_file(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b""
    with pytest.raises(FileExistsError):
        create_private_file(target)
