"""The service's Studios on demand (studiofleet): the cap, the idle stop, adopting what runs, and the privileged
command's answers read back. The runner here records calls; the real command runs in
tests/integration/dashboard/test_studio_on_demand.py against the Docker stand-in."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from nextmavens.platform.studiofleet import (
    AtCapacity,
    PrivilegedStudios,
    StudioFleet,
    StudioUnavailable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Runner:
    def __init__(self, running: dict[str, str] | None = None) -> None:
        self.up = dict(running or {})
        self.calls: list[tuple[str, str]] = []
        self.fail_stop = False

    def start(self, ref: str) -> str:
        self.calls.append(("start", ref))
        self.up[ref] = f"127.0.0.1:{4000 + len(self.calls)}"
        return self.up[ref]

    def stop(self, ref: str) -> None:
        self.calls.append(("stop", ref))
        if self.fail_stop:
            raise StudioUnavailable("stop failed")
        self.up.pop(ref, None)

    def running(self) -> dict[str, str]:
        return dict(self.up)


def test_a_studio_starts_once_and_the_cap_refuses_the_next_project() -> None:
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=2, idle_s=600, clock=clock)
    shop = fleet.open("shop")
    assert fleet.open("shop") == shop and runner.calls == [("start", "shop")]
    fleet.open("crm")
    with pytest.raises(AtCapacity) as refused:
        fleet.open("web")
    assert (refused.value.running, refused.value.cap) == (2, 2)
    assert ("start", "web") not in runner.calls


def test_idle_studios_stop_and_a_request_keeps_one_running() -> None:
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=2, idle_s=600, clock=clock)
    fleet.open("shop")
    fleet.open("crm")
    clock.now += 599
    assert fleet.touch("shop") is not None  # a request through nginx's auth_request
    assert fleet.reap() == []
    clock.now += 1
    assert fleet.reap() == ["crm"] and runner.calls[-1] == ("stop", "crm")
    assert fleet.touch("crm") is None and set(fleet.running()) == {"shop"}
    fleet.open("web")  # the freed place is taken
    clock.now += 600
    assert sorted(fleet.reap()) == ["shop", "web"] and fleet.running() == {}


def test_a_studio_that_could_not_be_stopped_still_counts_and_is_tried_again() -> None:
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock)
    fleet.open("shop")
    clock.now += 60
    runner.fail_stop = True
    assert fleet.reap() == []
    with pytest.raises(AtCapacity):
        fleet.open("crm")
    runner.fail_stop = False
    assert fleet.reap() == ["shop"]


def test_a_failed_start_frees_its_place() -> None:
    class Failing(Runner):
        def start(self, ref: str) -> str:
            raise StudioUnavailable("no")

    fleet = StudioFleet(Failing(), max_running=1, idle_s=60, clock=Clock())
    with pytest.raises(StudioUnavailable):
        fleet.open("shop")
    assert fleet.running() == {}
    with pytest.raises(StudioUnavailable):
        fleet.open("crm")  # not AtCapacity: the failed start holds no place


def test_a_restarted_service_counts_what_runs_and_stops_it_when_idle() -> None:
    runner, clock = Runner({"shop": "127.0.0.1:4100"}), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock)
    fleet.adopt()
    assert fleet.touch("shop") == "127.0.0.1:4100"
    with pytest.raises(AtCapacity):
        fleet.open("crm")
    clock.now += 60
    assert fleet.reap() == ["shop"]


def test_two_opens_of_one_project_at_once_start_one_studio() -> None:
    gate = threading.Event()

    class Slow(Runner):
        def start(self, ref: str) -> str:
            gate.wait(5)
            return super().start(ref)

    runner = Slow()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=Clock())
    first = threading.Thread(target=fleet.open, args=("shop",))
    first.start()
    deadline = time.monotonic() + 5
    while not fleet._open and time.monotonic() < deadline:  # the first open has reserved its place
        time.sleep(0.001)
    assert fleet._open
    with pytest.raises(AtCapacity):
        fleet.open("crm")
    gate.set()
    first.join(5)
    assert runner.calls == [("start", "shop")]


def _answer(code: int, out: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, out, "Error: something")


def test_the_privileged_commands_are_exactly_these_words_and_their_answers_are_checked() -> None:
    seen: list[list[str]] = []

    def run(answer: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
        def runner(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
            seen.append(argv)
            return answer

        return runner

    prefix = ("sudo", "-n", "/opt/nextmavens/bin/nextmavens-privileged")
    good = PrivilegedStudios(prefix, run(_answer(0, json.dumps({"ref": "shop", "upstream": "127.0.0.1:4567"}))))
    assert good.start("shop") == "127.0.0.1:4567"
    assert seen[-1] == [*prefix, "studio", "start", "shop"]
    listed = PrivilegedStudios(prefix, run(_answer(0, json.dumps({"studios": {"shop": "127.0.0.1:1", "x": "evil"}}))))
    assert listed.running() == {"shop": "127.0.0.1:1"} and seen[-1] == [*prefix, "studio", "list"]
    PrivilegedStudios(prefix, run(_answer(0, "{}"))).stop("shop")
    assert seen[-1] == [*prefix, "studio", "stop", "shop"]
    # nginx is only ever told a loopback address; a failure or a non-JSON answer is StudioUnavailable
    for bad in (
        _answer(0, json.dumps({"upstream": "10.0.0.5:80"})),
        _answer(0, json.dumps({"upstream": "127.0.0.1:80; evil"})),
        _answer(1, json.dumps({"upstream": "127.0.0.1:80"})),
        _answer(0, "not json"),
    ):
        with pytest.raises(StudioUnavailable):
            PrivilegedStudios(prefix, run(bad)).start("shop")
