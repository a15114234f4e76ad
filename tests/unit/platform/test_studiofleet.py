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
    IdleReaper,
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
    shop = fleet.open("shop", "acme")
    assert fleet.open("shop", "acme") == shop and runner.calls == [("start", "shop")]
    fleet.open("crm", "acme")
    with pytest.raises(AtCapacity) as refused:
        fleet.open("web", "globex")  # both places are acme's: globex never stops them
    assert (refused.value.running, refused.value.cap) == (2, 2)
    assert ("start", "web") not in runner.calls


def test_idle_studios_stop_and_a_request_keeps_one_running() -> None:
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=2, idle_s=600, clock=clock)
    fleet.open("shop", "acme")
    fleet.open("crm", "acme")
    clock.now += 599
    assert fleet.touch("shop") is not None  # a request through nginx's auth_request
    assert fleet.reap() == []
    clock.now += 1
    assert fleet.reap() == ["crm"] and runner.calls[-1] == ("stop", "crm")
    assert fleet.touch("crm") is None and set(fleet.running()) == {"shop"}
    fleet.open("web", "globex")  # the freed place is taken
    clock.now += 600
    assert sorted(fleet.reap()) == ["shop", "web"] and fleet.running() == {}


def test_a_studio_that_could_not_be_stopped_still_counts_and_is_tried_again() -> None:
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock)
    fleet.open("shop", "acme")
    clock.now += 60
    runner.fail_stop = True
    assert fleet.reap() == []
    with pytest.raises(AtCapacity):
        fleet.open("web", "globex")
    runner.fail_stop = False
    assert fleet.reap() == ["shop"]


def test_a_failed_start_frees_its_place() -> None:
    class Failing(Runner):
        def start(self, ref: str) -> str:
            raise StudioUnavailable("no")

    fleet = StudioFleet(Failing(), max_running=1, idle_s=60, clock=Clock())
    with pytest.raises(StudioUnavailable):
        fleet.open("shop", "acme")
    assert fleet.running() == {}
    with pytest.raises(StudioUnavailable):
        fleet.open("crm", "acme")  # not AtCapacity: the failed start holds no place


def test_a_restarted_service_counts_what_runs_and_stops_it_when_idle() -> None:
    runner, clock = Runner({"shop": "127.0.0.1:4100"}), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock)
    fleet.adopt()
    assert fleet.touch("shop") == "127.0.0.1:4100"
    with pytest.raises(AtCapacity):
        fleet.open("crm", "acme")
    clock.now += 60
    assert fleet.reap() == ["shop"]


def test_a_studio_still_starting_holds_its_place_under_the_cap() -> None:
    gate = threading.Event()

    class Slow(Runner):
        def start(self, ref: str) -> str:
            gate.wait(5)
            return super().start(ref)

    runner = Slow()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=Clock())
    first = threading.Thread(target=fleet.open, args=("shop", "acme"))
    first.start()
    deadline = time.monotonic() + 5
    while not fleet._open and time.monotonic() < deadline:  # the first open has reserved its place
        time.sleep(0.001)
    assert fleet._open
    with pytest.raises(AtCapacity):
        fleet.open("crm", "acme")
    gate.set()
    first.join(5)
    assert runner.calls == [("start", "shop")]


def test_a_second_open_of_a_project_whose_studio_starts_waits_for_that_start() -> None:
    """Two admins (or a double click) open one project's Studio at once: one `studio start`, both get its upstream
    (a second start at once would remove the container the first is creating)."""
    gate, entered = threading.Event(), threading.Event()

    class Slow(Runner):
        def start(self, ref: str) -> str:
            entered.set()
            gate.wait(5)
            return super().start(ref)

    runner = Slow()
    fleet = StudioFleet(runner, max_running=2, idle_s=60, clock=Clock())
    answers: list[str] = []
    opens = [threading.Thread(target=lambda: answers.append(fleet.open("shop", "acme"))) for _ in range(2)]
    opens[0].start()
    assert entered.wait(5)
    opens[1].start()
    gate.set()
    for thread in opens:
        thread.join(5)
    assert runner.calls == [("start", "shop")]
    assert len(answers) == 2 and answers[0] == answers[1] == runner.up["shop"]


def test_an_open_waiting_on_a_start_that_failed_starts_the_studio_itself() -> None:
    gate, entered = threading.Event(), threading.Event()

    class FailsFirst(Runner):
        def start(self, ref: str) -> str:
            if not entered.is_set():
                entered.set()
                gate.wait(5)
                raise StudioUnavailable("no")
            return super().start(ref)

    runner = FailsFirst()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=Clock())
    failed: list[Exception] = []

    def first() -> None:
        try:
            fleet.open("shop", "acme")
        except StudioUnavailable as exc:
            failed.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(5)
    # Whether the open below waits on the failing start or comes after it, it starts the Studio itself, and the
    # first start's failure never removes the Studio the second one started.
    threading.Thread(target=gate.set).start()
    assert fleet.open("shop", "acme") == runner.up["shop"]
    thread.join(5)
    assert len(failed) == 1 and fleet.running() == {"shop": runner.up["shop"]}


def opened_in_turn(*studios: tuple[str, str]) -> tuple[Runner, Clock, StudioFleet]:
    """A fleet with room for two and these (ref, org) opened one second apart."""
    runner, clock = Runner(), Clock()
    fleet = StudioFleet(runner, max_running=2, idle_s=600, clock=clock)
    for ref, org in studios:
        fleet.open(ref, org)
        clock.now += 1
    return runner, clock, fleet


def test_at_the_cap_an_org_makes_room_from_its_own_least_recently_used_studio() -> None:
    runner, _, fleet = opened_in_turn(("shop", "acme"), ("web", "globex"))
    fleet.open("crm", "acme")  # acme's shop makes room, not globex's web (used more recently than shop, too)
    assert runner.calls[-2:] == [("stop", "shop"), ("start", "crm")]  # stopped before the next starts
    assert set(fleet.running()) == {"web", "crm"}
    with pytest.raises(AtCapacity):
        fleet.open("other", "initech")  # holds none: refused as before, nothing stopped
    assert set(fleet.running()) == {"web", "crm"} and ("stop", "web") not in runner.calls


def test_the_least_recently_used_goes_first_and_a_failed_stop_starts_nothing() -> None:
    runner, clock, fleet = opened_in_turn(("shop", "acme"), ("crm", "acme"))
    fleet.touch("shop")  # a request through Studio: crm is now the least recently used
    runner.fail_stop = True
    with pytest.raises(StudioUnavailable):
        fleet.open("blog", "acme")
    assert ("start", "blog") not in runner.calls and set(fleet.running()) == {"shop", "crm"}
    assert fleet.touch("crm") is not None  # still counted and served
    clock.now += 1
    fleet.touch("shop")
    runner.fail_stop = False
    fleet.open("blog", "acme")
    assert runner.calls[-2:] == [("stop", "crm"), ("start", "blog")]


def test_an_adopted_studio_is_its_projects_orgs_to_make_room_from() -> None:
    runner, clock = Runner({"shop": "127.0.0.1:4100"}), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=600, clock=clock, org_of={"shop": "acme"}.get)
    fleet.adopt()
    with pytest.raises(AtCapacity):
        fleet.open("web", "globex")
    fleet.open("crm", "acme")
    assert runner.calls == [("stop", "shop"), ("start", "crm")]


def test_a_studio_being_stopped_still_counts_until_its_stop_is_done() -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowStop(Runner):
        def stop(self, ref: str) -> None:
            entered.set()
            release.wait(5)
            super().stop(ref)

    runner, clock = SlowStop(), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock)
    fleet.open("shop", "acme")
    clock.now += 60
    reaping = threading.Thread(target=fleet.reap)
    reaping.start()
    assert entered.wait(5)
    try:
        with pytest.raises(AtCapacity):  # shop's container still runs: no second one beside it
            fleet.open("web", "globex")
        assert fleet.touch("shop") is None  # nor is it served while it stops
        with pytest.raises(StudioUnavailable):
            fleet.open("shop", "acme")
    finally:
        release.set()
        reaping.join(5)
    fleet.open("web", "globex")
    assert runner.calls == [("start", "shop"), ("stop", "shop"), ("start", "web")]


def test_each_reap_pass_counts_a_studio_whose_start_timed_out_and_stops_it_when_idle() -> None:
    class TimesOut(Runner):
        def start(self, ref: str) -> str:
            super().start(ref)  # the container came up after all...
            raise StudioUnavailable("`studio start` could not run (TimeoutExpired)")  # ...too late for the service

    runner, clock = TimesOut(), Clock()
    fleet = StudioFleet(runner, max_running=1, idle_s=60, clock=clock, org_of={"shop": "acme"}.get)
    reaper = IdleReaper(fleet, every_s=60)
    with pytest.raises(StudioUnavailable):
        fleet.open("shop", "acme")
    assert fleet.running() == {} and "shop" in runner.up
    reaper.sweep()
    assert set(fleet.running()) == {"shop"}  # counted against the cap again
    with pytest.raises(AtCapacity):
        fleet.open("web", "globex")
    clock.now += 60
    reaper.sweep()
    assert fleet.running() == {} and runner.up == {} and runner.calls[-1] == ("stop", "shop")


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
