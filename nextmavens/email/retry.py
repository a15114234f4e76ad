"""When to send a request to Resend again, and when the next one may go. Pure: statuses and headers in, seconds out.

Resend answers 429 with `retry-after` (seconds) and every answer with `ratelimit-limit/remaining/reset` (reset: seconds
until the window opens again). A send is retried only where sending the same request again cannot send the email
twice: every request carries the same idempotency key, so a retry after a timeout gets the first answer back.
"""

from __future__ import annotations

from collections.abc import Mapping

BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_HEADER_WAIT_S = 60.0  # a header asking for longer is capped: the caller's deadline decides
# 5xx Resend or a proxy in front of it answers while it may well work a moment later
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# the same key still being processed by an earlier attempt: its answer comes once that one ends
CONCURRENT = "concurrent_idempotent_requests"


def backoff_s(attempt: int) -> float:
    """Exponential: 0.5, 1, 2, 4, 8, 8 ... seconds for attempts 1, 2, 3 ..."""
    return min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(0, attempt - 1))


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN, negative
        return None
    return min(seconds, MAX_HEADER_WAIT_S)


def retry_wait(status: int | None, headers: Mapping[str, str], error_name: str | None, attempt: int) -> float | None:
    """Seconds to wait before sending the same request again, or None when it must not be sent again.

    `status` None: no answer (a timeout, a reset connection). `headers` with lowercase names."""
    if status is None or status in RETRY_STATUSES:
        return backoff_s(attempt)
    if status == 429:
        for name in ("retry-after", "ratelimit-reset"):
            wait = _seconds(headers.get(name))
            if wait is not None:
                return max(wait, 0.05)
        return backoff_s(attempt)
    if status == 409 and error_name == CONCURRENT:
        return backoff_s(attempt)
    return None


def pause_after(status: int | None, headers: Mapping[str, str]) -> float:
    """Seconds the next request should wait, read from an answer's rate-limit headers: the window's reset when none
    is left in it, else 0."""
    if status is None:
        return 0.0
    remaining = _seconds(headers.get("ratelimit-remaining"))
    if remaining is not None and remaining < 1:
        return _seconds(headers.get("ratelimit-reset")) or 0.0
    return 0.0
