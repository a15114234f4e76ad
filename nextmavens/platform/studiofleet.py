"""The per-project Studios the service has running (README "Studio for a project"): started when an admin opens one,
at most `max_running` at once (the memory budget: each is Studio's limit, 256 MiB for Studio's published 133 MiB),
stopped after `idle_s` without a request through nginx's `auth_request`. The starting and stopping go through the
service's one way to root (`<privileged argv> studio start|stop REF`, `studio list`, which run
`nextmavens studio ...` as root; nextmavens.studiohost); the service itself never has Docker.

The fleet's record is the service's memory; at start it adopts what the host reports running, so a restarted service
counts them against the cap and stops them when idle. Pure logic but for the runner it is given.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nextmavens.runner import run_command

log = logging.getLogger("nextmavens.platform")

STUDIO_ARGS = "studio"  # `<privileged argv> studio start|stop REF` and `studio list`: the words sudoers allows
START_TIMEOUT_S = 120.0
_UPSTREAM = re.compile(r"^127\.0\.0\.1:[0-9]{1,5}$")  # the only shape nginx is ever told to proxy to


class AtCapacity(Exception):
    """As many Studios run as the host's budget allows; nothing was started."""

    def __init__(self, running: int, cap: int) -> None:
        super().__init__(f"{running} Studios are open, the most this host runs at once ({cap})")
        self.running, self.cap = running, cap


class StudioUnavailable(RuntimeError):
    """The privileged command could not start (or list) a Studio; its output is not in the message."""


class StudioRunner(Protocol):
    def start(self, ref: str) -> str: ...

    def stop(self, ref: str) -> None: ...

    def running(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class PrivilegedStudios:
    """`argv + studio ...`: sudo runs `nextmavens studio ...` as root, which checks the ref itself."""

    argv: tuple[str, ...]
    runner: Callable[..., subprocess.CompletedProcess[str]] = field(default=run_command)
    timeout_s: float = START_TIMEOUT_S

    def _json(self, words: list[str]) -> dict[str, object]:
        try:
            done = self.runner([*self.argv, STUDIO_ARGS, *words], timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StudioUnavailable(f"`studio {words[0]}` could not run ({type(exc).__name__})") from None
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = None
        if done.returncode != 0 or not isinstance(answer, dict):
            last = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1][:300]
            log.warning("`studio %s` exited %d: %s", words[0], done.returncode, last)
            raise StudioUnavailable(f"`studio {words[0]}` failed")
        return answer

    def start(self, ref: str) -> str:
        upstream = self._json(["start", ref]).get("upstream")
        if not isinstance(upstream, str) or not _UPSTREAM.fullmatch(upstream):
            raise StudioUnavailable("`studio start` named no loopback upstream")
        return upstream

    def stop(self, ref: str) -> None:
        self._json(["stop", ref])

    def running(self) -> dict[str, str]:
        studios = self._json(["list"]).get("studios")
        if not isinstance(studios, dict):
            raise StudioUnavailable("`studio list` answered no list")
        return {str(r): str(u) for r, u in studios.items() if _UPSTREAM.fullmatch(str(u))}


@dataclass
class _Open:
    upstream: str | None  # None while it starts
    seen: float
    org: str | None = None  # None: adopted and its project not found: no org's to stop
    stopping: bool = False  # still counted (its container still runs) until the stop is done
    started: threading.Event = field(default_factory=threading.Event)  # set when the start of a reserved one ends


class StudioFleet:
    """`open` starts at most `max_running`; at the cap an org's own least recently used Studio makes room for that
    org's next one (never another org's), so one org's admin cannot hold every place for long."""

    def __init__(
        self,
        runner: StudioRunner,
        max_running: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
        org_of: Callable[[str], str | None] = lambda ref: None,
    ) -> None:
        self.runner, self.max_running, self.idle_s, self.clock = runner, max_running, idle_s, clock
        self.org_of = org_of
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def adopt(self) -> None:
        """Count what runs and is not counted (a restarted service, a start that timed out): each idle from now."""
        found = self.runner.running()
        orgs = {ref: self.org_of(ref) for ref in found}  # outside the lock: the catalog may read the database
        with self._lock:
            for ref, upstream in found.items():
                self._open.setdefault(ref, _Open(upstream, self.clock(), orgs[ref]))

    def open(self, ref: str, org: str) -> str:
        """`ref`'s Studio's upstream, started when it does not run; at the cap `org`'s least recently used Studio is
        stopped first, and AtCapacity when `org` holds none. While another request starts it, this one waits for
        that start (a second `studio start` at once would remove the container the first is creating)."""
        with self._lock:
            current = self._open.get(ref)
            starting = current.started if current is not None and current.upstream is None else None
        if starting is not None:
            starting.wait(START_TIMEOUT_S)
        with self._lock:
            current = self._open.get(ref)
            if current is not None and current.stopping:
                raise StudioUnavailable("this Studio is being stopped")
            if current is not None and current.upstream is not None:
                current.seen, current.org = self.clock(), org
                return current.upstream
            if current is not None:
                raise StudioUnavailable("this Studio is still starting")
            victim = None
            if len(self._open) >= self.max_running:
                victim = self._least_recent_of(org)
                if victim is None:
                    raise AtCapacity(len(self._open), self.max_running)
                self._open[victim].stopping = True
            reserved = self._open[ref] = _Open(None, self.clock(), org)  # counted while it starts
        try:
            if victim is not None:
                self._make_room(victim, ref)
            upstream = self.runner.start(ref)
        except Exception:
            with self._lock:
                if self._open.get(ref) is reserved:
                    self._open.pop(ref)
            reserved.started.set()  # a waiting open finds no Studio and may start one itself
            raise
        with self._lock:
            self._open[ref] = _Open(upstream, self.clock(), org)
        reserved.started.set()  # a waiting open finds it running
        return upstream

    def _least_recent_of(self, org: str) -> str | None:
        """(Under the lock.) `org`'s running Studio unused the longest, or None."""
        own = [
            (o.seen, ref)
            for ref, o in self._open.items()
            if o.upstream is not None and not o.stopping and o.org == org
        ]
        return min(own)[1] if own else None

    def _make_room(self, victim: str, ref: str) -> None:
        """Stops `victim` before `ref` starts: the containers running never exceed the cap."""
        try:
            self.runner.stop(victim)
        except StudioUnavailable:
            with self._lock:
                self._open[victim].stopping = False
            raise
        with self._lock:
            self._open.pop(victim, None)
        log.info("stopped the Studio of %s to make room for %s (the same org's)", victim, ref)

    def touch(self, ref: str) -> str | None:
        """The upstream of `ref`'s running Studio (its idle time starts again), or None."""
        with self._lock:
            current = self._open.get(ref)
            if current is None or current.upstream is None or current.stopping:
                return None
            current.seen = self.clock()
            return current.upstream

    def running(self) -> dict[str, str]:
        with self._lock:
            return {ref: o.upstream for ref, o in self._open.items() if o.upstream is not None}

    def reap(self) -> list[str]:
        """Stops the Studios idle for `idle_s` or more; the refs stopped. Each still counts until its stop is done."""
        now = self.clock()
        with self._lock:
            idle = [
                r
                for r, o in self._open.items()
                if o.upstream is not None and not o.stopping and now - o.seen >= self.idle_s
            ]
            for ref in idle:
                self._open[ref].stopping = True
        stopped = []
        for ref in idle:
            try:
                self.runner.stop(ref)
            except StudioUnavailable:
                log.warning("the idle Studio of %s could not be stopped; tried again at the next pass", ref)
                with self._lock:
                    self._open[ref].stopping = False
                continue
            with self._lock:
                self._open.pop(ref, None)
            stopped.append(ref)
        return stopped


class IdleReaper:
    """The service's loop that stops idle Studios: one pass every `every_s` until stopped."""

    def __init__(self, fleet: StudioFleet, every_s: float) -> None:
        self.fleet, self.every_s = fleet, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="studio-idle-stop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sweep()
        while not self._stop.wait(self.every_s):
            self.sweep()

    def sweep(self) -> None:
        """One pass: count what runs uncounted (a start that timed out leaves one running), then stop the idle."""
        try:
            self.fleet.adopt()
        except StudioUnavailable:
            log.warning("the running Studios could not be listed; only those the service knows of are counted")
        for ref in self.fleet.reap():
            log.info("stopped the idle Studio of %s", ref)

    def stop(self, timeout_s: float = 2.0) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True
