"""Rates from cumulative counters (CPU seconds, transactions, jiffies): the change since the last sample over the
time between them. Pure: the caller passes the times."""

from __future__ import annotations


class Rates:
    def __init__(self) -> None:
        self.last: dict[str, tuple[float, float]] = {}

    def per_second(self, key: str, value: float, now: float) -> float | None:
        """None for the first sample of a key, and after a counter went backwards (a restart, a reset)."""
        before = self.last.get(key)
        self.last[key] = (value, now)
        if before is None or now <= before[1] or value < before[0]:
            return None
        return (value - before[0]) / (now - before[1])

    def ratio(self, key: str, part: float, whole: float) -> float | None:
        """The change of `part` over the change of `whole` (busy over total jiffies)."""
        before = self.last.get(key)
        self.last[key] = (part, whole)
        if before is None or whole <= before[1] or part < before[0]:
            return None
        return (part - before[0]) / (whole - before[1])

    def keep_only(self, keys: set[str]) -> None:
        for key in set(self.last) - keys:
            del self.last[key]
