"""A rise of 5xx against the project's own baseline, detected on generated log lines in the edge's format."""

from __future__ import annotations

import json
import random
from collections import Counter

from nextmavens.metrics.accesslog import traffic_by_ref
from nextmavens.metrics.dockerapi import log_lines
from nextmavens.metrics.erroralerts import service_of
from nextmavens.metrics.errors import ErrorWatch, Rise


def minute_of_lines(rng: random.Random, host: str, requests: int, error_share: float, path: str) -> list[bytes]:
    lines = []
    for _ in range(requests):
        failed = rng.random() < error_share
        item = {"t": 1.0, "h": host, "p": "", "m": "GET", "u": path if failed else "/rest/v1/ok",
                "s": 503 if failed else 200, "rt": 0.01}
        lines.append(json.dumps(item).encode())
    return lines


def run(watch: ErrorWatch, rng: random.Random, minutes: list[tuple[int, float, str]]) -> list[tuple[int, Rise]]:
    rises = []
    for index, (requests, error_share, path) in enumerate(minutes):
        found, _ = traffic_by_ref(minute_of_lines(rng, "shop.api.test", requests, error_share, path), "api.test")
        traffic = found["shop"]
        rise = watch.observe("acme/shop", traffic.requests, traffic.server_errors, Counter(traffic.error_paths))
        if rise is not None:
            rises.append((index, rise))
    return rises


def test_a_rise_alerts_once_and_again_after_a_quiet_spell() -> None:
    rng = random.Random(18)
    normal = [(200, 0.005, "/rest/v1/x")] * 60
    spike = [(200, 0.3, "/rest/v1/rpc/checkout")] * 20
    rises = run(ErrorWatch(), rng, normal + spike + normal + spike)
    indices = [index for index, _ in rises]
    # once each spike, at its first minute (the second's first minutes still weigh the first spike's tail)
    assert len(indices) == 2 and indices[0] == 60 and 140 <= indices[1] <= 142
    first = rises[0][1]
    assert first.errors >= 10 and first.share > 0.03 and first.baseline_share < 0.02
    assert first.top_paths[0][0] == "/rest/v1/rpc/checkout"
    assert "acme/shop: 5xx rose to" in first.message() and "/rest/v1/rpc/checkout" in first.message()


def test_a_project_that_always_fails_this_much_is_not_rising() -> None:
    rng = random.Random(7)
    watch = ErrorWatch()
    rises = run(watch, rng, [(200, 0.2, "/rest/v1/x")] * 120)
    assert rises == []  # its own normal: no alert, not even right after the collector started


def test_few_errors_are_not_a_rise() -> None:
    rng = random.Random(3)
    assert run(ErrorWatch(), rng, [(1000, 0.0, "/")] * 60 + [(1, 1.0, "/x")] * 9) == []


def test_the_containers_log_and_the_service_named() -> None:
    frames = b"".join(bytes([1, 0, 0, 0]) + len(p).to_bytes(4, "big") + p for p in (b"one\n", b"two\nthree\n"))
    assert log_lines(frames) == ["one", "two", "three"]
    assert log_lines(b"plain tty text\n") == ["plain tty text"]
    assert service_of([("/auth/v1/token", 3)]) == "auth" and service_of([]) == "rest"
