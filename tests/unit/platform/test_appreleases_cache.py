"""The dashboard's active-release lookup runs the host's command (sudo, as root) at most once per (org, ref, app)
per few seconds, however often the page is loaded; failures are kept as long. The command here is a real
subprocess standing in for the root script: it logs each run and answers like `releases --json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nextmavens.platform.appreleases import RecentReleases, ReleasesUnavailable
from nextmavens.platform.service import ServiceSettings

HOST = """
import json, sys
log, words = sys.argv[1], sys.argv[2:]
open(log, "a").write(json.dumps(words) + "\\n")
if words[2] == "broken":
    sys.exit(3)
rows = [{"release": 4, "commit": "0123456789abcdef", "created": "2026-12-02T18:00:00", "state": "active"}]
print(json.dumps({"project": words[1], "app": words[2], "releases": rows}))
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def host(tmp_path: Path) -> tuple[ServiceSettings, Path]:
    script, log = tmp_path / "host.py", tmp_path / "calls.log"
    script.write_text(HOST)
    settings = ServiceSettings(
        dsn="host=127.0.0.1",
        master_key=tmp_path / "key",
        projects_dir=tmp_path / "none",
        privileged_argv=(sys.executable, str(script), str(log)),
    )
    return settings, log


def runs(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_one_host_run_per_app_per_few_seconds(host: tuple[ServiceSettings, Path]) -> None:
    settings, log = host
    clock = Clock()
    cache = RecentReleases(ttl_s=5.0, clock=clock)
    want = {"release": 4, "commit": "0123456789ab", "created": "2026-12-02T18:00:00"}
    for _ in range(5):
        assert cache.active(settings, "acme", "shop", "web") == want
    assert runs(log) == [["releases", "acme/shop", "web", "--json"]]
    assert cache.active(settings, "acme", "shop", "api") == want  # another app: its own entry
    assert cache.active(settings, "globex", "shop", "web") == want  # another org: its own entry
    assert len(runs(log)) == 3
    clock.now += 5.0
    assert cache.active(settings, "acme", "shop", "web") == want
    assert len(runs(log)) == 4  # expired: asked again


def test_a_failure_is_kept_as_long_and_names_no_host_output(host: tuple[ServiceSettings, Path]) -> None:
    settings, log = host
    clock = Clock()
    cache = RecentReleases(ttl_s=5.0, clock=clock)
    for _ in range(3):
        with pytest.raises(ReleasesUnavailable, match=r"failed \(exit 3\)"):
            cache.active(settings, "acme", "shop", "broken")
    assert len(runs(log)) == 1
    clock.now += 6.0
    with pytest.raises(ReleasesUnavailable):
        cache.active(settings, "acme", "shop", "broken")
    assert len(runs(log)) == 2
