"""`nextmavens apply` with WhatsApp instances, on a real PostgreSQL: each instance's token and webhook secret are
sealed at the database step (with or without Evolution), with the project's forwarding secret, the edge step
converges them in the Evolution stand-in (created with that token, webhook signed with that secret), a second
apply changes nothing, and an instance removed from the manifest is left alone, reported, shown, and deleted by
`whatsapp delete`."""

from __future__ import annotations

import json

from tests.support.edgehost import EVOLUTION_HOOKS_URL, Edge
from tests.support.engine import Stage
from tests.support.projects import write_project

ORDERS = {"name": "orders", "events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]}


def _sealed(stage: Stage, instance: str) -> tuple[str, str]:
    with stage.engine().secrets() as store:
        pair = store.whatsapp_secrets("shop", instance)
    assert pair is not None
    return pair


def test_secrets_are_sealed_at_the_database_step_even_without_evolution(stage: Stage) -> None:
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [ORDERS]})
    plan = stage.cli("plan", "--json")
    assert plan.returncode == 2
    details = [c["detail"] for c in json.loads(plan.stdout)["changes"] if c["kind"] == "secrets"]
    assert details and "WhatsApp token and webhook secret for orders" in details[0]
    applied = stage.cli("apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    token, webhook_secret = _sealed(stage, "orders")
    assert len(webhook_secret) >= 43 and token != webhook_secret
    assert token not in applied.stdout + applied.stderr and webhook_secret not in applied.stdout + applied.stderr
    assert stage.cli("plan").returncode == 0  # sealed once: nothing left to generate
    assert _sealed(stage, "orders") == (token, webhook_secret)
    with stage.engine().secrets() as store:
        forward_secret = store.whatsapp_forward_secret("shop")
    assert forward_secret is not None and len(forward_secret) >= 43
    assert forward_secret not in applied.stdout + applied.stderr and forward_secret not in (token, webhook_secret)
    shown = stage.cli("whatsapp", "show", "acme/shop")  # printed on purpose, as `keys show` prints keys
    assert shown.returncode == 0, shown.stderr
    assert f"forward_secret: {forward_secret}" in shown.stdout and f"webhook_secret: {webhook_secret}" in shown.stdout
    document = json.loads(stage.cli("whatsapp", "show", "acme/shop", "--json", check=True).stdout)
    assert document["forward_secret"] == forward_secret
    assert [row["name"] for row in document["instances"]] == ["orders"]


def test_apply_converges_instances_then_changes_nothing_and_leaves_orphans(stage: Stage, edge: Edge) -> None:
    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [ORDERS, {"name": "support"}]})
    first = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "edge: shop: whatsapp instance shop--orders: create (token, webhook, settings)" in first.stdout
    token, webhook_secret = _sealed(stage, "orders")
    held = edge.evolution.instances["shop--orders"]
    assert held["token"] == token and held["integration"] == "WHATSAPP-BAILEYS"
    assert held["webhook"]["headers"] == {"jwt_key": webhook_secret}
    assert held["webhook"]["url"] == f"{EVOLUTION_HOOKS_URL}/hooks/evolution/acme/shop/orders"
    assert sorted(held["webhook"]["events"]) == ["CONNECTION_UPDATE", "MESSAGES_UPSERT"]
    assert held["webhook"]["webhookByEvents"] is False
    for text in (first.stdout, first.stderr):
        assert token not in text and webhook_secret not in text

    writes = len(edge.evolution.writes())
    second = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert second.returncode == 0, second.stderr
    assert "edge: shop: whatsapp instance shop--orders unchanged" in second.stdout
    assert len(edge.evolution.writes()) == writes

    write_project(stage.projects, "acme", "shop", whatsapp={"instances": [ORDERS]})
    third = stage.cli("apply", "--yes", "--edge-config", str(edge.config))
    assert third.returncode == 0, third.stderr
    assert "shop--support is no longer declared; left alone" in third.stdout
    assert "shop--support" in edge.evolution.instances

    shown = stage.cli("whatsapp", "show", "acme/shop", "--json", "--edge-config", str(edge.config))
    assert shown.returncode == 0, shown.stderr
    rows = {r["name"]: r for r in json.loads(shown.stdout)["instances"]}
    assert set(rows) == {"orders", "support"}
    assert rows["orders"]["token"] == token and rows["orders"]["webhook_secret"] == webhook_secret
    assert rows["orders"]["state"] == "close" and rows["orders"]["evolution_name"] == "shop--orders"
    assert rows["orders"]["webhook_url"].endswith("/hooks/evolution/acme/shop/orders")

    wrong = stage.cli(
        "whatsapp", "delete", "acme/shop", "support", "--confirm", "acme/shop", "--edge-config", str(edge.config)
    )
    assert wrong.returncode != 0 and "shop--support" in edge.evolution.instances
    deleted = stage.cli(
        "whatsapp",
        "delete",
        "acme/shop",
        "support",
        "--confirm",
        "acme/shop/support",
        "--edge-config",
        str(edge.config),
    )
    assert deleted.returncode == 0, deleted.stderr
    assert "shop--support" not in edge.evolution.instances
    with stage.engine().secrets() as store:
        assert store.whatsapp_secrets("shop", "support") is None
    assert stage.sql("SELECT command, result FROM apply_runs ORDER BY id DESC LIMIT 1", dbname="nextmavens") == [
        ("whatsapp delete", "ok")
    ]
