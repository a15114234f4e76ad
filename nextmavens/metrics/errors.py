"""Error tracking: a sudden rise of a project's 5xx answers against its own recent baseline (pure).

Each minute the collector gives every project's requests, 5xx count and the paths of those 5xx. A project is
rising when, over the last WINDOW minutes, it answered at least MIN_ERRORS 5xx and its 5xx share is at least
FACTOR times its share over the BASELINE minutes before (and at least MIN_SHARE; with at least
MIN_BASELINE of them): a project that always fails a
fifth of its requests is not rising, one that goes from 0.5 % to 20 % is. It alerts once per rise; it is armed
again after a whole WINDOW below the threshold.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

WINDOW = 5  # minutes compared
BASELINE = 60  # minutes before them: the project's own normal
MIN_BASELINE = 15  # minutes of it needed before judging (a collector just started knows no normal yet)
MIN_ERRORS = 10
FACTOR = 3.0
MIN_SHARE = 0.05
TOP_PATHS = 5


@dataclass(frozen=True)
class Rise:
    scope: str
    errors: int
    requests: int
    share: float  # 5xx share over the window
    baseline_share: float
    top_paths: list[tuple[str, int]]

    def message(self) -> str:
        paths = ", ".join(f"{path} ({count})" for path, count in self.top_paths)
        return (
            f"{self.scope}: 5xx rose to {self.share:.1%} of requests over the last {WINDOW} minutes "
            f"({self.errors} of {self.requests}; its last hour: {self.baseline_share:.1%}). Top paths: {paths}"
        )


@dataclass
class History:
    minutes: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=WINDOW + BASELINE))
    paths: deque[Counter[str]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    alerted: bool = False
    quiet: int = 0  # minutes in a row below the threshold since the alert


def share(minutes: list[tuple[int, int]]) -> tuple[int, int, float]:
    requests = sum(r for r, _ in minutes)
    errors = sum(e for _, e in minutes)
    return requests, errors, (errors / requests if requests else 0.0)


class ErrorWatch:
    def __init__(self) -> None:
        self.history: dict[str, History] = {}

    def observe(self, scope: str, requests: int, errors: int, error_paths: Counter[str]) -> Rise | None:
        """One minute of `scope`; a Rise the first minute it is rising."""
        history = self.history.setdefault(scope, History())
        history.minutes.append((requests, errors))
        history.paths.append(error_paths)
        minutes = list(history.minutes)
        recent, before = minutes[-WINDOW:], minutes[:-WINDOW]
        total, failed, now_share = share(recent)
        _, _, base_share = share(before)
        rising = (
            len(before) >= MIN_BASELINE
            and failed >= MIN_ERRORS
            and now_share >= max(MIN_SHARE, FACTOR * base_share)
        )
        if not rising:
            if history.alerted:
                history.quiet += 1
                if history.quiet >= WINDOW:
                    history.alerted, history.quiet = False, 0
            return None
        history.quiet = 0
        if history.alerted:
            return None
        history.alerted = True
        top = sum(history.paths, Counter()).most_common(TOP_PATHS)
        return Rise(scope, failed, total, now_share, base_share, top)

    def forget(self, keep: set[str]) -> None:
        for scope in set(self.history) - keep:
            del self.history[scope]
