"""GET /v1/projects/{org}/{ref}/metrics and `nextmavens metrics` (from the control database, and through the API)
over minutes the collector's store wrote into the service's real control database."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from nextmavens.control.db import connect_control
from nextmavens.control.store import metrics as store
from nextmavens.control.store import monitoring
from nextmavens.metrics.cli import metrics
from tests.integration.platform.harness import PlatformStage, bearer


@pytest.fixture(scope="module")
def recorded(platform_stage: PlatformStage) -> int:
    now = int(time.time()) // 60 * 60
    ids = store.SeriesIds()
    with connect_control(platform_stage.stage.server.dsn) as conn:
        for minute in range(now - 30 * 60, now + 60, 60):
            step = (minute - now) // 60 + 30
            store.write_minute(
                conn,
                ids,
                minute,
                {
                    "acme/shop": {"requests": float(step), "http_5xx": 1.0, "cpu_pct:rest": 2.5},
                    "globex/web": {"requests": 99.0},
                    "host": {"mem_used_pct": 40.0},
                },
            )
    return now


def test_the_owner_reads_a_projects_metrics(platform_stage: PlatformStage, recorded: int) -> None:
    headers = bearer(platform_stage, "owner@acme.test")
    with httpx.Client(base_url=platform_stage.url, timeout=30) as client:
        answer = client.get("/v1/projects/acme/shop/metrics", params={"since": "1h"}, headers=headers)
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert view["scope"] == "acme/shop" and view["current_at"] == recorded
        series = {s["name"]: s for s in view["series"]}
        assert [s["name"] for s in view["series"]] == ["requests", "http_5xx", "cpu_pct:rest"]
        assert series["requests"]["current"] == 30.0 and series["requests"]["max"] == 30.0
        assert series["requests"]["unit"] == "req/min" and len(series["requests"]["points"]) == 60
        assert series["requests"]["points"][:20] == [None] * 20  # the first half hour holds no minutes
        assert client.get("/v1/projects/acme/shop/metrics", params={"since": "2x"}, headers=headers).status_code == 400


def test_a_project_the_caller_cannot_see_is_404(platform_stage: PlatformStage, recorded: int) -> None:
    with httpx.Client(base_url=platform_stage.url, timeout=30) as client:
        other_org = client.get("/v1/projects/globex/web/metrics", headers=bearer(platform_stage, "owner@acme.test"))
        crm_only = bearer(platform_stage, "owner@acme.test", org="acme", project="crm")
        scoped = client.get("/v1/projects/acme/shop/metrics", headers=crm_only)
        missing = client.get("/v1/projects/acme/nosuch/metrics", headers=bearer(platform_stage, "owner@acme.test"))
        anonymous = client.get("/v1/projects/acme/shop/metrics")
    assert [other_org.status_code, scoped.status_code, missing.status_code] == [404, 404, 404]
    assert anonymous.status_code == 401
    assert "99" not in other_org.text


def test_the_command_reads_the_control_database_or_the_api(
    platform_stage: PlatformStage, recorded: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("NEXTMAVENS_DSN", platform_stage.stage.server.dsn)
    text = runner.invoke(metrics, ["acme/shop", "--since", "1h"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].startswith("acme/shop")
    requests = next(line for line in lines if line.strip().startswith("requests"))
    assert "30 req/min" in requests and "▁" in requests and "█" in requests
    host = runner.invoke(metrics, ["--json", "--since", "1h"])
    assert json.loads(host.output)["series"][0]["current"] == 40.0
    assert runner.invoke(metrics, ["acme/shop", "--since", "forever"]).exit_code == 2

    monkeypatch.delenv("NEXTMAVENS_DSN")
    monkeypatch.setenv("NEXTMAVENS_URL", platform_stage.url)
    monkeypatch.setenv("NEXTMAVENS_TOKEN", platform_stage.issue("dev@acme.test")[1])
    through = runner.invoke(metrics, ["acme/shop", "--json", "--since", "1h"])
    assert through.exit_code == 0, through.output
    assert json.loads(through.output)["series"][0]["current"] == 30.0
    hidden = runner.invoke(metrics, ["globex/web", "--json"])
    assert hidden.exit_code != 0 and "99" not in hidden.output


@pytest.fixture(scope="module")
def monitored(platform_stage: PlatformStage) -> date:
    """Two days of uptime checks, a failure and its recovery, and alerts for acme/shop and globex/web, written
    through the monitors' own store functions."""
    today = datetime.now(UTC).date()
    api = monitoring.Target("acme/shop", "api", "shop.api.example.test")
    domain = monitoring.Target("acme/shop", "domain", "shop.acme.test")
    with connect_control(platform_stage.stage.server.dsn) as conn:
        for _ in range(4):
            monitoring.record_checks(conn, today - timedelta(days=1), [(api, True), (domain, True)])
        monitoring.record_checks(conn, today, [(api, True), (domain, False)])
        monitoring.record_change(conn, domain, False, "HTTP 502")
        monitoring.add_alert(conn, "uptime", "acme/shop", "shop.acme.test is down", {"status": 502}, True)
        monitoring.add_alert(conn, "errors", "acme/shop", "5xx rose on acme/shop", {"paths": ["/rest/v1/x"]}, False)
        monitoring.add_alert(conn, "errors", "globex/web", "5xx rose on globex/web", {"paths": ["/secret"]}, True)
        monitoring.record_checks(conn, today, [(monitoring.Target("globex/web", "api", "web.api.example.test"), False)])
    return today


def test_uptime_per_day_and_alerts_through_the_api(platform_stage: PlatformStage, monitored: date) -> None:
    headers = bearer(platform_stage, "dev@acme.test")
    with httpx.Client(base_url=platform_stage.url, timeout=30) as client:
        uptime = client.get("/v1/projects/acme/shop/uptime", params={"days": 7}, headers=headers)
        alerts = client.get("/v1/projects/acme/shop/alerts", headers=headers)
        short = client.get("/v1/projects/acme/shop/uptime", params={"days": 1}, headers=headers)
        bad = client.get("/v1/projects/acme/shop/uptime", params={"days": 0}, headers=headers)
        other = client.get("/v1/projects/globex/web/uptime", headers=headers)
        other_alerts = client.get("/v1/projects/globex/web/alerts", headers=headers)
    assert uptime.status_code == 200, uptime.text
    view = uptime.json()
    assert view["scope"] == "acme/shop" and view["since"] == (monitored - timedelta(days=6)).isoformat()
    targets = {(t["kind"], t["name"]): t["days"] for t in view["targets"]}
    yesterday, today = (monitored - timedelta(days=1)).isoformat(), monitored.isoformat()
    assert targets[("api", "shop.api.example.test")] == [
        {"day": yesterday, "checks": 4, "up": 4, "uptime_pct": 100.0},
        {"day": today, "checks": 1, "up": 1, "uptime_pct": 100.0},
    ]
    assert [d["uptime_pct"] for d in targets[("domain", "shop.acme.test")]] == [100.0, 0.0]
    assert view["events"][0]["name"] == "shop.acme.test" and view["events"][0]["ok"] is False
    assert "web.api.example.test" not in uptime.text  # another org's checks never show
    assert [d["day"] for d in short.json()["targets"][0]["days"]] == [today]
    assert bad.status_code == 422
    assert alerts.status_code == 200
    assert [a["title"] for a in alerts.json()["alerts"]] == ["5xx rose on acme/shop", "shop.acme.test is down"]
    assert alerts.json()["alerts"][0]["detail"] == {"paths": ["/rest/v1/x"]}
    assert other.status_code == other_alerts.status_code == 404
    assert "globex" not in other_alerts.text.replace("globex/web", "") and "/secret" not in other_alerts.text
