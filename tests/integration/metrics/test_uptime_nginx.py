"""Uptime through a real nginx (the rendered edge) in front of an upstream that fails and recovers: the counts per
day, the changes and the alerts in the real control database, one alert per change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from nextmavens.control.db import connect_control
from nextmavens.control.store import monitoring
from nextmavens.metrics.uptime import ProjectNames, probe, run_uptime, targets_of
from tests.support.metricsedge import metrics_edge

pytestmark = pytest.mark.integration


def test_failure_alerts_once_and_recovery_once(fresh_pg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []

    def send(text: str) -> bool:
        sent.append(text)
        return True

    projects = [
        ProjectNames("acme/shop", "shop", ("api.shop.acme.test",), None),
        ProjectNames("acme/crm", "crm", (), "http://unknown.crm.test/"),  # a name nginx does not serve
        ProjectNames("acme/helpdesk", "helpdesk", (), None, active=False),
    ]
    with metrics_edge(tmp_path) as edge, connect_control(fresh_pg.dsn) as control:
        targets = targets_of(edge.config.api_domain, projects, https=False)
        assert [(t.kind, t.name) for t, _ in targets] == [
            ("api", "shop.api.example.test"),
            ("domain", "api.shop.acme.test"),
            ("api", "crm.api.example.test"),
            ("app", "unknown.crm.test"),
        ]

        def prober(url: str):  # type: ignore[no-untyped-def]
            return probe(url, connect_to=("127.0.0.1", edge.config.http_port), timeout=5)

        first = run_uptime(control, targets, prober, send)
        assert len(first) == 4
        assert sent == ["acme/crm app unknown.crm.test is DOWN: Remote end closed connection without response"]
        edge.upstream.down = True  # the upstream answers 502: nginx passes it on
        run_uptime(control, targets, prober, send)
        run_uptime(control, targets, prober, send)  # still down: nothing new
        edge.upstream.down = False
        run_uptime(control, targets, prober, send)

        assert sent[1:] == [
            "acme/crm api crm.api.example.test is DOWN: HTTP 502 (was HTTP 200)",
            "acme/shop api shop.api.example.test is DOWN: HTTP 502 (was HTTP 200)",
            "acme/shop domain api.shop.acme.test is DOWN: HTTP 502 (was HTTP 200)",
            "acme/crm api crm.api.example.test recovered: HTTP 200",
            "acme/shop api shop.api.example.test recovered: HTTP 200",
            "acme/shop domain api.shop.acme.test recovered: HTTP 200",
        ]
        today = datetime.now(UTC).date()
        days = monitoring.uptime_by_day(control, "acme/shop", today)
        assert [(d["kind"], d["checks"], d["up"], d["uptime_pct"]) for d in days] == [
            ("api", 4, 2, 50.0),
            ("domain", 4, 2, 50.0),
        ]
        events = monitoring.uptime_events(control, "acme/shop")
        assert [(e["kind"], e["ok"]) for e in events][:2] == [("domain", True), ("api", True)]
        assert len(events) == 6  # first seen, down, recovered: for each of the two names
        alerts = monitoring.recent_alerts(control, ["acme/shop"])
        assert [a.title for a in alerts][0] == "acme/shop domain api.shop.acme.test recovered: HTTP 200"
        assert len(alerts) == 4 and all(a.kind == "uptime" and a.sent for a in alerts)
        assert monitoring.recent_alerts(control, ["acme/nosuch"]) == []
