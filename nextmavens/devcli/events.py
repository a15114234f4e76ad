"""Server-sent events from a stream's lines (the WHATWG rules the logs endpoint follows). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    name: str  # "message" unless the event names itself
    data: str


def read_events(lines: Iterable[str]) -> Iterator[Event]:
    """Each event once its blank line arrives; comments (`:`) and fields other than event/data are skipped."""
    name, data = "", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
