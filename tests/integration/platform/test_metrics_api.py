"""GET /v1/projects/{org}/{ref}/metrics and `nextmavens metrics` (from the control database, and through the API)
over minutes the collector's store wrote into the service's real control database."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from click.testing import CliRunner

from nextmavens.control.db import connect_control
from nextmavens.control.store import metrics as store
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
