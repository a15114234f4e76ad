"""Uptime's pure parts: the names checked and the changes alerted."""

from __future__ import annotations

from nextmavens.control.store.monitoring import Target
from nextmavens.metrics.uptime import Check, ProjectNames, targets_of, transitions

UP, DOWN = Check(True, 401, "HTTP 401", 0.01), Check(False, None, "timed out", 10.0)


def test_targets_are_the_public_names() -> None:
    names = targets_of(
        "api.example.test",
        [ProjectNames("acme/shop", "shop", ("shop.acme.test",), "https://app.shop.test/login"),
         ProjectNames("acme/dev", "dev", (), "http://localhost:3000"),
         ProjectNames("acme/off", "off", ("off.test",), None, active=False)],
    )
    assert [(t.kind, t.name, url) for t, url in names] == [
        ("api", "shop.api.example.test", "https://shop.api.example.test/rest/v1/"),
        ("domain", "shop.acme.test", "https://shop.acme.test/rest/v1/"),
        ("app", "app.shop.test", "https://app.shop.test/login"),
        ("api", "dev.api.example.test", "https://dev.api.example.test/rest/v1/"),
    ]


def test_alerts_only_on_change() -> None:
    a, b, c = Target("o/a", "api", "a"), Target("o/b", "api", "b"), Target("o/c", "api", "c")
    first = transitions({}, {a: UP, b: DOWN})
    assert [(x.target, x.ok, x.alert) for x in first] == [(a, True, None), (b, False, "o/b api b is DOWN: timed out")]
    previous = {a: (True, "HTTP 401"), b: (False, "timed out"), c: (True, "HTTP 200")}
    assert transitions(previous, {a: UP, b: DOWN, c: UP}) == []  # nothing changed: nothing to say
    changes = transitions(previous, {a: DOWN, b: UP, c: UP})
    assert [x.alert for x in changes] == [
        "o/a api a is DOWN: timed out (was HTTP 401)",
        "o/b api b recovered: HTTP 401",
    ]
