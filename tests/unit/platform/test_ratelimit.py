"""Failed authentications per client address: burst, refill, independence, bounded table."""

from __future__ import annotations

from nextmavens.platform.ratelimit import FailureLimiter


def test_a_burst_then_one_more_per_refill() -> None:
    limiter = FailureLimiter(burst=3, refill_s=10)
    for _ in range(3):
        assert limiter.retry_after("a", 0) == 0
        limiter.failed("a", 0)
    assert limiter.retry_after("a", 0) == 10
    assert limiter.retry_after("a", 4) == 6
    assert limiter.retry_after("a", 10) == 0
    limiter.failed("a", 10)
    assert limiter.retry_after("a", 10) == 10


def test_addresses_are_independent() -> None:
    limiter = FailureLimiter(burst=1, refill_s=60)
    limiter.failed("a", 0)
    assert limiter.retry_after("a", 1) > 0
    assert limiter.retry_after("b", 1) == 0


def test_the_table_is_bounded_and_forgets_full_buckets() -> None:
    limiter = FailureLimiter(burst=2, refill_s=1, max_addresses=100)
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}", 0)
    assert len(limiter) == 100
    assert limiter.retry_after("10.0.3.231", 100) == 0  # refilled: nothing to remember
    assert len(limiter) == 99


def test_take_counts_only_what_it_allows() -> None:
    limiter = FailureLimiter(burst=2, refill_s=5)
    assert [limiter.take("shop--orders", 0) for _ in range(4)] == [0, 0, 5, 5]  # refused takes cost nothing
    assert limiter.take("shop--orders", 5) == 0 and limiter.take("shop--orders", 5) == 5
    assert limiter.take("crm--sales", 5) == 0
