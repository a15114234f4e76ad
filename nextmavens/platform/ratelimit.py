"""Token buckets per key, in a table of bounded size: failed authentications per client address, and messages
sent per WhatsApp instance.

In-process (one service process on the host); the clock is passed in, so the logic is tested with plain values.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureLimiter:
    """`burst` failures at once, then one more every `refill_s` seconds. When the table is full the address
    seen least recently is forgotten (it starts again with a full bucket)."""

    def __init__(self, burst: int = 10, refill_s: float = 6.0, max_addresses: int = 10_000) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, address: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) / self.refill_s)
        bucket.at = now
        self._buckets.move_to_end(address)
        if bucket.tokens >= self.burst:
            del self._buckets[address]  # full again: nothing to remember
            return None
        return bucket

    def retry_after(self, address: str, now: float) -> int:
        """0 when `address` may try to authenticate now; else whole seconds until it may."""
        bucket = self._bucket(address, now)
        if bucket is None or bucket.tokens >= 1:
            return 0
        return max(1, math.ceil((1 - bucket.tokens) * self.refill_s))

    def failed(self, address: str, now: float) -> None:
        bucket = self._bucket(address, now)
        if bucket is None:
            bucket = self._buckets[address] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def take(self, key: str, now: float) -> int:
        """One event for `key` if its bucket allows it now (0, counted); else whole seconds until it would."""
        wait = self.retry_after(key, now)
        if not wait:
            self.failed(key, now)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
