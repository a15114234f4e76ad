"""The wheel the deploy uploads is reproducible: two builds of one commit are byte-identical, so a
no-op converge never reinstalls the package on the host. (pip fetches the build backend.)"""

import zipfile

import pytest

from nextmavens.host.dist import build_wheel, file_sha256, resolve_wheel, wheel_has_module

pytestmark = pytest.mark.integration  # real nginx/sshd/PostgreSQL/pyinfra where available


def test_two_builds_of_one_commit_are_identical(tmp_path) -> None:
    first = build_wheel(out_dir=tmp_path / "a")
    second = build_wheel(out_dir=tmp_path / "b")
    assert file_sha256(first) == file_sha256(second)
    names = zipfile.ZipFile(first).namelist()
    assert "nextmavens/__init__.py" in names and "nextmavens/host/hostdata.py" in names
    assert not any("__pycache__" in name for name in names)
    assert wheel_has_module(first, "nextmavens/keys.py")
    # what the deploy (and the sandbox's converge) installs is the product alone, never the workshop
    assert [n for n in names if any(w in n for w in ("devkit", "sandbox", "localdb", "standin"))] == []


def test_a_prebuilt_wheel_is_used_as_is(tmp_path) -> None:
    wheel = tmp_path / "nextmavens-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("nextmavens/__init__.py", "")
    assert resolve_wheel(str(wheel)) == wheel
