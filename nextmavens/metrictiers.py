"""The metric tiers, downsampling and retention as plain arithmetic (pure: no I/O, no clock).

Three tiers (control tables from migration 1000_metrics.sql):
- raw: one sample a minute per series, kept RAW_KEEP (48 h);
- 5m: 5-minute average and maximum, one row per series per hour (12 slots), kept FIVE_KEEP (30 days);
- 1h: hourly average and maximum, one row per series per day (24 slots), kept HOUR_KEEP (a year).

A downsampled row is written once, when its whole period (the hour, the day) is over: rows are never updated.
What is not yet rolled up is read from the finer tier, which keeps it: retention never deletes a finer tier's
rows before the coarser tier's `done_until` (`prune_before`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MINUTE = 60
HOUR = 3600
DAY = 86400

RAW_KEEP = 48 * HOUR
FIVE_KEEP = 30 * DAY
HOUR_KEEP = 366 * DAY


@dataclass(frozen=True)
class Tier:
    name: str
    step: int  # seconds one value stands for
    row: int  # seconds one stored row holds (step * slots)
    keep: int  # seconds kept

    @property
    def slots(self) -> int:
        return self.row // self.step


RAW = Tier("raw", MINUTE, MINUTE, RAW_KEEP)
FIVE = Tier("5m", 5 * MINUTE, HOUR, FIVE_KEEP)
HOURLY = Tier("1h", HOUR, DAY, HOUR_KEEP)
TIERS = (RAW, FIVE, HOURLY)


def floor_to(ts: int, step: int) -> int:
    return ts - ts % step


def rollup_window(
    tier: Tier, done_until: int | None, now: int, source_oldest: int | None, source_done: int | None = None
) -> tuple[int, int] | None:
    """[start, end) of whole rows of `tier` to write now: from where it stopped (or the oldest source sample) up
    to the last period that is over, and no further than its source is complete (`source_done`, for a tier
    rolled up from another downsampled one). None when nothing is due."""
    end = floor_to(now if source_done is None else min(now, source_done), tier.row)
    if done_until is None:
        if source_oldest is None:
            return None
        start = floor_to(source_oldest, tier.row)
    else:
        start = done_until
    return (start, end) if start < end else None


def prune_before(tier: Tier, now: int, coarser_done_until: int | None) -> int:
    """Rows of `tier` starting before this time may be deleted: older than its retention, and already rolled
    up into the next tier (a tier nothing rolls up from passes None for the last one: only retention counts)."""
    cutoff = floor_to(now - tier.keep, tier.row)
    if tier is HOURLY:
        return cutoff
    if coarser_done_until is None:
        return min(cutoff, 0)  # nothing rolled up yet: keep everything
    return min(cutoff, coarser_done_until)


def slot_aggregate(
    samples: Iterable[tuple[int, float, float]], tier: Tier
) -> dict[int, list[tuple[float, float] | None]]:
    """The reference downsampling (the store does the same in SQL; tests hold one against the other): (ts, avg,
    max) samples of one series -> {row start: [(average of the averages, max of the maxima) or None per slot]}."""
    groups: dict[int, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for ts, avg, peak in samples:
        row = floor_to(ts, tier.row)
        groups[row][(ts - row) // tier.step].append((avg, peak))
    out: dict[int, list[tuple[float, float] | None]] = {}
    for row, slots in groups.items():
        values: list[tuple[float, float] | None] = []
        for slot in range(tier.slots):
            got = slots.get(slot)
            values.append(None if not got else (sum(a for a, _ in got) / len(got), max(m for _, m in got)))
        out[row] = values
    return out


@dataclass(frozen=True)
class Read:
    tier: Tier
    start: int
    end: int


def read_plan(since: int, now: int, done: dict[str, int | None]) -> list[Read]:
    """Which tier serves which part of [since, now]: the coarsest needed for the start (raw within 48 h, 5m within
    30 days, else 1h), then finer ones for what the coarser tier has not rolled up yet. `done` maps tier name to
    its done_until (None: never rolled up)."""
    if since >= now - RAW.keep:
        return [Read(RAW, since, now + 1)]
    five_done = done.get(FIVE.name) or since
    if since >= now - FIVE.keep or done.get(HOURLY.name) is None:
        plan = [Read(FIVE, since, five_done)] if five_done > since else []
        return [*plan, Read(RAW, max(since, five_done), now + 1)]
    hour_done = max(int(done.get(HOURLY.name) or since), since)
    plan = [Read(HOURLY, since, hour_done)] if hour_done > since else []
    if five_done > hour_done:
        plan.append(Read(FIVE, hour_done, five_done))
    plan.append(Read(RAW, max(hour_done, five_done, since), now + 1))
    return plan


def expand_rows(
    row_start: int, tier: Tier, avgs: Sequence[float | None], maxes: Sequence[float | None]
) -> list[tuple[int, float, float]]:
    """A stored row's slots as (ts, avg, max) points, empty slots left out."""
    points = []
    for slot, (avg, peak) in enumerate(zip(avgs, maxes, strict=False)):
        if avg is None:
            continue
        points.append((row_start + slot * tier.step, float(avg), float(peak if peak is not None else avg)))
    return points


def resample(points: Sequence[tuple[int, float, float]], start: int, end: int, buckets: int) -> list[float | None]:
    """Points averaged into `buckets` equal spans of [start, end) (None where a span holds none): what a
    sparkline or chart draws."""
    if buckets <= 0 or end <= start:
        return []
    width = (end - start) / buckets
    sums = [0.0] * buckets
    counts = [0] * buckets
    for ts, avg, _ in points:
        if start <= ts < end:
            index = min(int((ts - start) / width), buckets - 1)
            sums[index] += avg
            counts[index] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(buckets)]


def parse_since(text: str) -> int:
    """'90m', '24h', '7d', '1y' as seconds (at most a year); ValueError names the accepted forms."""
    units = {"m": MINUTE, "h": HOUR, "d": DAY, "y": 365 * DAY}
    value = text.strip().lower()
    if len(value) >= 2 and value[-1] in units and value[:-1].isdigit():
        seconds = int(value[:-1]) * units[value[-1]]
        if 0 < seconds <= HOUR_KEEP:
            return seconds
    raise ValueError(f"--since {text!r}: a duration like 90m, 24h, 7d or 1y (at most a year)")


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
