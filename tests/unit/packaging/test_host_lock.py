"""requirements/host.lock, what the host venv installs, agrees with pyproject's runtime dependencies on every host
Python and machine: run scripts/lock-host-deps (and commit the lock) when this fails."""

from __future__ import annotations

import tomllib

from nextmavens.host.lockfile import LOCK_PATH, disagreements, host_environments, parse_lock
from tests.support.repo import REPO


def _dependencies() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = parse_lock((REPO / LOCK_PATH).read_text(encoding="utf-8"))
    problems = disagreements(_dependencies(), pins, host_environments())
    assert problems == [], "run scripts/lock-host-deps and commit requirements/host.lock:\n" + "\n".join(problems)


def test_the_lock_pins_the_extras_it_needs_and_names_no_index() -> None:
    text = (REPO / LOCK_PATH).read_text(encoding="utf-8")
    names = {pin.name for pin in parse_lock(text)}
    assert "psycopg-binary" in names  # psycopg[binary]: no libpq or compiler on the host
    assert "--index-url" not in text and "--extra-index-url" not in text and "://" not in text
