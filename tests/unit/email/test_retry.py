"""When the Resend client sends again and how long it waits: pure, from statuses and headers."""

from __future__ import annotations

import pytest

from nextmavens.email.retry import MAX_HEADER_WAIT_S, backoff_s, pause_after, retry_wait


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 8]


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504])
def test_no_answer_and_5xx_are_sent_again_after_backoff(status: int | None) -> None:
    assert retry_wait(status, {}, None, 2) == 1


def test_429_waits_for_retry_after_then_ratelimit_reset_then_backoff() -> None:
    assert retry_wait(429, {"retry-after": "3"}, "rate_limit_exceeded", 1) == 3
    assert retry_wait(429, {"ratelimit-reset": "2"}, None, 1) == 2
    assert retry_wait(429, {"retry-after": "soon"}, None, 3) == 2
    assert retry_wait(429, {"retry-after": "100000"}, None, 1) == MAX_HEADER_WAIT_S
    assert retry_wait(429, {"retry-after": "-1"}, None, 1) == 0.5
    assert retry_wait(429, {"retry-after": "nan"}, None, 1) == 0.5


@pytest.mark.parametrize(
    ("status", "name"),
    [(400, "validation_error"), (401, "missing_api_key"), (403, "validation_error"), (422, "missing_required_field"),
     (409, "invalid_idempotent_request")],
)
def test_refusals_are_never_sent_again(status: int, name: str) -> None:
    assert retry_wait(status, {"retry-after": "1"}, name, 1) is None


def test_a_key_still_in_progress_is_asked_again() -> None:
    assert retry_wait(409, {}, "concurrent_idempotent_requests", 1) == 0.5


def test_the_window_pauses_only_when_nothing_is_left_in_it() -> None:
    assert pause_after(200, {"ratelimit-remaining": "0", "ratelimit-reset": "1"}) == 1
    assert pause_after(200, {"ratelimit-remaining": "1", "ratelimit-reset": "1"}) == 0
    assert pause_after(200, {}) == 0
    assert pause_after(None, {"ratelimit-remaining": "0", "ratelimit-reset": "1"}) == 0
