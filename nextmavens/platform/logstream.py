"""A child process's output as server-sent events, bounded in time, bytes and lines; the child ends with the
stream, whether it ended by itself, by a bound, or because the client went away.

Each output line is one `data:` event; a comment keeps a quiet follow alive (and finds a gone client); the last
event, `end`, says why the stream ended. The child gets SIGTERM, then SIGKILL, and is always waited for.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

CHUNK = 65536
MAX_LINE = 16384  # longer lines are cut into pieces of this many bytes
KEEPALIVE_S = 15.0
TERM_GRACE_S = 2.0


@dataclass(frozen=True)
class Bounds:
    seconds: float
    max_bytes: int
    max_lines: int


def event(data: str, name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {data}\n\n".encode()


def as_text(line: bytes) -> str:
    """One event's data: SSE ends a field at CR or LF, so neither may stay inside it."""
    return line.decode(errors="replace").replace("\r", "").replace("\n", " ")


def lines_of(buffer: bytearray, final: bool) -> list[bytes]:
    """Complete lines taken from the front of `buffer` (and the rest, when `final`); over-long ones cut."""
    found: list[bytes] = []
    while True:
        newline = buffer.find(b"\n")
        if newline < 0 or newline > MAX_LINE:
            if len(buffer) >= MAX_LINE:
                found.append(bytes(buffer[:MAX_LINE]))
                del buffer[:MAX_LINE]
                continue
            if final and buffer:
                found.append(bytes(buffer))
                buffer.clear()
            return found
        found.append(bytes(buffer[:newline]))
        del buffer[: newline + 1]


async def start(argv: Sequence[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """`argv` with its stdout and stderr merged into one pipe; OSError when it cannot start."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,  # a signal for the service's own group never reaches it, nor the reverse
    )


async def stream_events(child: asyncio.subprocess.Process, bounds: Bounds) -> AsyncIterator[bytes]:
    """The child's output as events until it ends or a bound is reached; then it is stopped."""
    assert child.stdout is not None
    deadline = time.monotonic() + bounds.seconds
    sent_bytes = sent_lines = 0
    buffer = bytearray()
    reason = "eof"
    try:
        yield b": streaming\n\n"
        while reason == "eof":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "max_seconds"
                break
            try:
                chunk = await asyncio.wait_for(child.stdout.read(CHUNK), timeout=min(remaining, KEEPALIVE_S))
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            buffer += chunk
            for line in lines_of(buffer, final=not chunk):
                sent_bytes += len(line) + 1
                sent_lines += 1
                if sent_bytes > bounds.max_bytes:
                    reason = "max_bytes"
                    break
                yield event(as_text(line))
                if sent_lines >= bounds.max_lines:
                    reason = "max_lines"
                    break
            if not chunk:
                break
        if reason != "eof":
            await stop(child)
        yield event(json.dumps({"reason": reason, "exit_code": await child.wait()}), "end")
    finally:
        await stop(child)


class EventStream(StreamingResponse):
    """The child's events; however the response ends (even before its first byte), the child is stopped and
    `on_close` runs."""

    def __init__(self, child: asyncio.subprocess.Process, bounds: Bounds, on_close: Callable[[], None]) -> None:
        super().__init__(
            stream_events(child, bounds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},  # nginx passes each event on
        )
        self.child = child
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await stop(self.child)
            self.on_close()


async def stop(child: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a grace period; waited for even while the request is being cancelled."""
    with anyio.CancelScope(shield=True):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if child.returncode is not None:
                return
            try:
                child.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(child.wait(), timeout=TERM_GRACE_S)
            except TimeoutError:
                continue


class StreamSlots:
    """How many streams each token holds at once, and the limit."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, token: str) -> bool:
        with self._lock:
            held = self._held.get(token, 0)
            if held >= self.per_token:
                return False
            self._held[token] = held + 1
            return True

    def give_back(self, token: str) -> None:
        with self._lock:
            held = self._held.get(token, 0) - 1
            if held > 0:
                self._held[token] = held
            else:
                self._held.pop(token, None)
