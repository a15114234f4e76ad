"""The deploying machine's cache of locked wheels for one host Python: no download when every pin is cached,
nothing but the lock's wheels kept, and a pin no wheel matches named. No network: pip is replaced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nextmavens.host import wheelhouse
from nextmavens.host.lockfile import parse_lock
from nextmavens.host.wheelhouse import CACHE_DIR, PythonTarget, WheelhouseError, locked_wheels

TARGET = PythonTarget("3.13", "x86_64", "2.41")


def _lock(*wheels: tuple[str, bytes]) -> str:
    return (
        "".join(f"{name}==1.0 --hash=sha256:{hashlib.sha256(data).hexdigest()}\n" for name, data in wheels)
        + f"pywin32==312 ; sys_platform == 'win32' --hash=sha256:{'0' * 64}\n"
    )


def test_cached_wheels_need_no_download_and_stale_ones_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / CACHE_DIR / TARGET.name
    cache.mkdir(parents=True)
    (cache / "a-1.0-py3-none-any.whl").write_bytes(b"wheel a")
    (cache / "old-0.9-py3-none-any.whl").write_bytes(b"an earlier lock's")
    calls: list[list[str]] = []
    monkeypatch.setattr(wheelhouse, "_download", lambda pins, target, dest: calls.append([p.name for p in pins]))
    got = locked_wheels(parse_lock(_lock(("a", b"wheel a"))), TARGET, tmp_path)
    assert got == cache and calls == []  # pywin32 is not for this host: not wanted, not fetched
    assert sorted(p.name for p in cache.iterdir()) == ["a-1.0-py3-none-any.whl"]


def test_a_pin_no_wheel_matches_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(wheelhouse, "_download", lambda pins, target, dest: calls.append([p.name for p in pins]))
    with pytest.raises(WheelhouseError, match=r"Python 3.13 on x86_64 \(glibc 2.41\).*: b==1.0"):
        locked_wheels(parse_lock(_lock(("b", b"wheel b"))), TARGET, tmp_path)
    assert calls == [["b"]]
