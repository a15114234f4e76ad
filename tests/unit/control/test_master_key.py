"""The master key file: created once, whole, private, however many processes start at once."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

from nextmavens.control.crypto import load_or_create_master_key

PROCESSES = 4
ROUNDS = 600


def _race(folder: Path, barrier: Any, results: Any) -> None:
    """In each round, every process creates-or-reads the same new key file at the same moment."""
    for index in range(ROUNDS):
        barrier.wait(timeout=30)
        try:
            results.put((index, load_or_create_master_key(folder / f"round-{index}" / "master.key")))
        except Exception as exc:
            results.put((index, f"{type(exc).__name__}: {exc}"))


def test_processes_creating_the_key_at_once_all_read_the_one_written(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [context.Process(target=_race, args=(tmp_path, barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    seen: dict[int, list[object]] = {}
    for _ in range(PROCESSES * ROUNDS):
        index, outcome = results.get(timeout=60)
        seen.setdefault(index, []).append(outcome)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    failures = {index: outcomes for index, outcomes in seen.items() if not isinstance(outcomes[0], bytes)}
    failures |= {index: outcomes for index, outcomes in seen.items() if len(set(outcomes)) != 1}  # type: ignore[arg-type]
    assert failures == {}, f"{len(failures)} of {ROUNDS} rounds: {list(failures.items())[:3]}"
    for index in range(ROUNDS):
        folder = tmp_path / f"round-{index}"
        key_file = folder / "master.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert [p.name for p in folder.iterdir()] == ["master.key"]  # no temporary file left behind
