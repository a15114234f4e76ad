"""Where a followed log resumes after the service ended a stream at its time bound. Pure.

docker prints each line after its RFC 3339 UTC time with up to nine fractional digits (trailing zeros dropped);
the service's `since` takes whole seconds. So a stream resumes at the second of the last line printed, and the
lines up to that line's time, printed already, are skipped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_STAMP = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?Z(?:\s|$)")


def line_time(line: str) -> str | None:
    """The line's time as a key that sorts as time does (fraction padded to nine digits); None without one."""
    found = _STAMP.match(line)
    if found is None:
        return None
    return f"{found.group(1)}.{(found.group(2) or '').ljust(9, '0')}"


def resume_since(last: str | None, started: datetime) -> str:
    """`since` for the next stream: the last printed line's second, else the second the last stream started."""
    if last is not None:
        return f"{last[:19]}Z"
    return started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def printed_already(line: str, last: str | None) -> bool:
    """Whether a line of a resumed stream was printed by the stream before (its time is not after the last's)."""
    time = line_time(line)
    return last is not None and time is not None and time <= last
