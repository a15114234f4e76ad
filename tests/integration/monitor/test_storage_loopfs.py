"""The storage monitor against a real, small ext4 filesystem (a file-backed image mounted with -o loop),
filled step by step. Needs root (mount) and e2fsprogs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nextmavens.monitor.storage import assert_safe, check_storage, measure

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mkfs.ext4") is None, reason="needs root and mkfs.ext4 for a loop mount"
)


@pytest.fixture
def loopfs(tmp_path: Path) -> Iterator[Path]:
    image = tmp_path / "disk.img"
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with image.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def fill_to(mount: Path, percent: float, name: str) -> float:
    """Write one file so usage reaches about `percent`; returns the measured percent."""
    usage = measure(mount)
    target = (usage.used + usage.available) * percent / 100.0
    missing = int(target - usage.used)
    if missing > 0:
        with (mount / name).open("wb") as handle:
            handle.write(os.urandom(missing))
            handle.flush()
            os.fsync(handle.fileno())
    return measure(mount).percent


def test_alert_sequence_is_exactly_80_90_95_then_recovery(loopfs: Path, tmp_path: Path) -> None:
    sent: list[str] = []
    ran: list[list[str]] = []
    cache = loopfs / "build-cache.bin"

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        if argv[1:3] == ["builder", "prune"] and cache.exists():
            cache.unlink()  # stands in for the build cache docker would free
        return subprocess.CompletedProcess(argv, 0, "", "")

    state = tmp_path / "state" / "storage.json"
    kinds: list[tuple[str, int]] = []
    steps = [(30, "a"), (50, "b"), (81, "c"), (84, "d"), (86, "e"), (91, "f"), (91.5, "g")]
    for percent, name in steps:
        fill_to(loopfs, percent, name)
        check = check_storage([str(loopfs)], state, sent.append, runner, now=0)
        kinds += [(e.kind, e.level) for e in check.events]
    assert not ran  # below 92%: nothing pruned
    # At 93% the monitor prunes; the stand-in build cache (about 0.5%) is freed and reported.
    fill_to(loopfs, 92.5, "h")
    with cache.open("wb") as handle:
        handle.write(os.urandom(300 * 1024))
    check = check_storage([str(loopfs)], state, sent.append, runner, now=0)
    kinds += [(e.kind, e.level) for e in check.events]
    [report] = check.prunes
    assert report.freed >= 300 * 1024 and not cache.exists()
    assert "freed" in sent[-1]
    # Holding at the same level: no repeats.
    for _ in range(3):
        kinds += [(e.kind, e.level) for e in check_storage([str(loopfs)], state, sent.append, runner, now=60).events]
    fill_to(loopfs, 96, "i")
    for now in (120, 180):  # within the prune interval: no second prune, and 95 is alerted once
        kinds += [(e.kind, e.level) for e in check_storage([str(loopfs)], state, sent.append, runner, now=now).events]
    # Space freed by hand: one recovery.
    for name in "cdefghi":
        (loopfs / name).unlink()
    os.sync()
    kinds += [(e.kind, e.level) for e in check_storage([str(loopfs)], state, sent.append, runner, now=240).events]
    kinds += [(e.kind, e.level) for e in check_storage([str(loopfs)], state, sent.append, runner, now=300).events]

    alerts = [k for k in kinds if k[0] != "prune"]
    assert alerts == [("alert", 80), ("alert", 90), ("alert", 95), ("recovery", 0)]
    assert [k for k in kinds if k[0] == "prune"] == [("prune", 90)]
    # What ran: argv lists only, never anything touching a volume.
    assert ran and all(isinstance(argv, list) for argv in ran)
    for argv in ran:
        assert_safe(argv)
        assert not any("volume" in word for word in argv)
    assert ["docker", "volume", "prune"] not in [argv[:3] for argv in ran]


def test_state_persists_between_runs(loopfs: Path, tmp_path: Path) -> None:
    state = tmp_path / "storage.json"
    fill_to(loopfs, 85, "x")
    first: list[str] = []
    check_storage([str(loopfs)], state, first.append, lambda argv: (0, ""), now=0)
    assert len(first) == 1 and "crossed 80%" in first[0]
    second: list[str] = []  # a new process: only the state file connects the runs
    check_storage([str(loopfs)], state, second.append, lambda argv: (0, ""), now=300)
    assert second == []
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_with_offload_the_prune_waits_for_a_pass_that_succeeded_and_the_disk_still_above_90(
    loopfs: Path, tmp_path: Path
) -> None:
    sent: list[str] = []
    ran: list[list[str]] = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    state = tmp_path / "state" / "storage.json"
    fill_to(loopfs, 86, "big")
    media = loopfs / "media.bin"
    with media.open("wb") as handle:
        handle.write(os.urandom(5 * 1024 * 1024))  # about 8 %: what the pass moves away
    assert measure(loopfs).percent >= 92
    check = check_storage([str(loopfs)], state, sent.append, runner, now=0, offload=lambda: False)
    assert not ran and not check.prunes and "offload pass failed" in sent[-1]

    def offloaded() -> bool:
        media.unlink()
        return True

    check = check_storage([str(loopfs)], state, sent.append, runner, now=3600, offload=offloaded)
    assert not ran and not check.prunes and measure(loopfs).percent < 90  # the pass freed enough
    fill_to(loopfs, 93, "more")
    check = check_storage([str(loopfs)], state, sent.append, runner, now=7200, offload=lambda: True)
    assert ran and len(check.prunes) == 1  # a pass that succeeded, and still above 90 %: pruned
