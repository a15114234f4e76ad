"""`monitor health`'s WhatsApp checks against the Evolution stand-in (2.3.7's fetchInstances, served on loopback):
an instance left connecting past the limit alerts once through the monitor's alert path, recovers once when it
opens; Evolution unreachable is one failing check, and the instances keep their last state meanwhile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nextmavens.edge.clients.evolution import EvolutionApi
from nextmavens.edge.whatsappinstances import DesiredInstance
from nextmavens.monitor.health import check_health
from nextmavens.monitor.state import load_json
from nextmavens.monitor.whatsapphealth import whatsapp_checks
from tests.support.standins import EvolutionStandIn, serve

pytestmark = pytest.mark.integration

KEY = "global-evolution-key-0123456789abcdef"


class NoContainers:
    class containers:  # noqa: N801 - the docker SDK's attribute name
        @staticmethod
        def list(all: bool = False) -> list[Any]:  # noqa: A002 - the docker SDK's keyword
            return []


def _run(url: str, folder: Path, now: float, sent: list[str]) -> dict[str, Any]:
    previous = load_json(folder / "health.json").get("health", {})
    extra = whatsapp_checks(lambda: EvolutionApi(url, KEY, timeout=2), folder / "whatsapp.json", previous, now, {})
    check_health(NoContainers(), [], folder / "health.json", sent.append, extra=extra)
    return extra


def test_an_instance_stuck_connecting_alerts_once_and_recovers_once(tmp_path: Path) -> None:
    standin = EvolutionStandIn(KEY)
    desired = DesiredInstance("acme", "shop", "orders", "http://host.docker.internal:8101/hooks/evolution/acme/shop/orders",
                              ("MESSAGES_UPSERT",), "tok-0123456789", "jwt-key-0123456789")  # fmt: skip
    assert standin.respond("POST", "/instance/create", {}, json.dumps(desired.create_body()).encode(),
                           {"apikey": KEY})[0] == 201  # fmt: skip
    standin.instances["shop--orders"]["connectionStatus"] = "connecting"
    sent: list[str] = []
    with serve(standin) as url:
        assert _run(url, tmp_path, 0, sent)["whatsapp:shop--orders"]["ok"] is True
        _run(url, tmp_path, 300, sent)
        assert sent == []
        _run(url, tmp_path, 660, sent)
        assert sent == ["whatsapp:shop--orders is DOWN: connecting for 11 min (was connecting for 5 min)"]
        _run(url, tmp_path, 960, sent)
        assert len(sent) == 1  # still stuck: nothing new
        standin.instances["shop--orders"]["connectionStatus"] = "open"
        _run(url, tmp_path, 1260, sent)
        assert sent[1:] == ["whatsapp:shop--orders recovered: open"]
        standin.instances["shop--orders"]["connectionStatus"] = "close"
        _run(url, tmp_path, 1300, sent)
    # Evolution gone: one failing check; the instance keeps its last check instead of "recovering" or vanishing
    extra = _run(url, tmp_path, 2000, sent)
    assert extra["whatsapp:shop--orders"] == {"ok": True, "detail": "close for 0 min"}
    assert extra["whatsapp-api"]["ok"] is False and KEY not in extra["whatsapp-api"]["detail"]
    assert sent[2:] == [f"whatsapp-api is DOWN: {extra['whatsapp-api']['detail']} (was 1 instance(s))"]


def test_a_host_without_evolution_has_no_whatsapp_checks(tmp_path: Path) -> None:
    assert whatsapp_checks(lambda: None, tmp_path / "whatsapp.json", {}, 0, {}) == {}
    assert not (tmp_path / "whatsapp.json").exists()
