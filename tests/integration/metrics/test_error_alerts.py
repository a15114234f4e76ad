"""A rise of 5xx through a real nginx, seen by the collector's minutes (simulated: ticks without waiting), alerted
once to the Telegram stand-in (devkit/standins/telegram.py, through the alerts every monitor sends) and stored in
the real control database's alerts table. The container's log lines come from a stand-in of the Engine API's
logs call here; the real engine's answer is read in tests/e2e/test_metrics_sandbox.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.standins.telegram import TelegramStandin
from nextmavens.control.db import connect_control
from nextmavens.control.store import monitoring
from nextmavens.control.store.projects import add_project_if_missing
from nextmavens.metrics.accesslog import LogFollower
from nextmavens.metrics.cgroups import CgroupReader
from nextmavens.metrics.collector import Collector, Sources
from nextmavens.metrics.dockerapi import Container
from nextmavens.metrics.erroralerts import ErrorAlerts
from tests.support.metricsedge import metrics_edge

pytestmark = pytest.mark.integration


class EngineStandIn:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def containers(self) -> list[Container]:
        return [Container("r" * 64, "nm-shop-rest-1", "nm-shop", "rest")]

    def last_lines(self, container_id: str, lines: int = 20) -> list[str]:
        self.asked.append(container_id)
        return ['2026-12-02T14:00:00Z {"message":"could not connect to the database"}']


def test_a_rise_of_5xx_alerts_once_with_paths_and_log_lines(
    fresh_pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    token_file = tmp_path / "telegram.token"
    with TelegramStandin(tmp_path / "telegram") as telegram, metrics_edge(tmp_path) as edge:
        token_file.write_text(telegram.state.token)
        token_file.chmod(0o600)
        monkeypatch.setenv("NEXTMAVENS_TELEGRAM_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("NEXTMAVENS_TELEGRAM_CHAT_ID", telegram.state.chat_id)
        monkeypatch.setenv("NEXTMAVENS_TELEGRAM_API", telegram.base_url)
        with connect_control(fresh_pg.dsn) as control:
            add_project_if_missing(control, "shop", "acme", "Shop", "active")
        engine = EngineStandIn()
        collector = Collector(
            Sources(
                connect=lambda: connect_control(fresh_pg.dsn),
                docker=engine,  # type: ignore[arg-type]
                cgroups=CgroupReader(tmp_path / "no-cgroups"),
                access_log=LogFollower(edge.log, from_start=True),
                api_domain=edge.config.api_domain,
                disks=(str(tmp_path),),
            )
        )
        collector.on_minute.append(ErrorAlerts(collector).on_minute)
        minute = 1_790_000_000 // 60 * 60
        for index in range(30):
            for request in range(10):
                failing = index >= 20 and request < 6
                assert edge.get("shop.api.example.test", "/status/503" if failing else "/rest/v1/items") in (200, 503)
            collector.tick(minute + 60 * index)

    messages = [m.text or "" for m in telegram.state.messages.values()]
    assert len(messages) == 1, messages
    assert "acme/shop: 5xx rose to" in messages[0] and "/status/503" in messages[0]
    assert "could not connect to the database" in messages[0]
    assert engine.asked == ["r" * 64]
    with connect_control(fresh_pg.dsn) as control:
        alerts = monitoring.recent_alerts(control, ["acme/shop"])
    assert len(alerts) == 1 and alerts[0].kind == "errors" and alerts[0].sent
    detail = alerts[0].detail
    assert detail["top_paths"][0]["path"] == "/status/503" and detail["service"] == "rest"
    assert detail["log_lines"] and detail["errors"] >= 10
