"""WhatsApp instances, pure: Evolution names, desired bodies, the difference with what Evolution holds,
orphans, and what `whatsapp show` prints. Secrets never appear in a change's text or a repr."""

from __future__ import annotations

import pytest

from nextmavens.edge.whatsappinstances import (
    SETTINGS,
    DesiredInstance,
    NotOurs,
    ObservedInstance,
    instance_changes,
    observed_from_row,
    orphan_notice,
    orphans,
    owned_by,
)
from nextmavens.manifest.models import WHATSAPP_EVENTS
from nextmavens.naming import evolution_instance_name, evolution_instance_owner
from nextmavens.upstream.facts import pinned_evolution
from nextmavens.whatsapp.view import instance_rows

TOKEN, SECRET = "token-0123456789abcdef", "jwt-key-0123456789abcdef0123456789"


def _desired(**fields: object) -> DesiredInstance:
    values: dict[str, object] = {
        "org": "acme",
        "ref": "shop",
        "instance": "orders",
        "webhook_url": "http://host.docker.internal:8100/hooks/evolution/acme/shop/orders",
        "events": ("MESSAGES_UPSERT", "CONNECTION_UPDATE"),
        "token": TOKEN,
        "webhook_secret": SECRET,
    }
    values.update(fields)
    return DesiredInstance(**values)  # type: ignore[arg-type]


def _as_evolution_holds(desired: DesiredInstance) -> ObservedInstance:
    hook = desired.webhook()
    row = {"url": hook["url"], "enabled": True, "events": hook["events"], "headers": hook["headers"]}
    row.update(webhookByEvents=False, webhookBase64=False)
    return ObservedInstance(desired.evolution_name, TOKEN, "close", "", row, {**SETTINGS, "msgCall": ""})


def test_names_are_unique_across_projects_even_where_a_single_hyphen_would_collide() -> None:
    assert evolution_instance_name("shop-eu", "main") != evolution_instance_name("shop", "eu-main")
    assert evolution_instance_name("shop-eu", "main") == "shop-eu--main"
    assert evolution_instance_owner("shop-eu--main") == ("shop-eu", "main")
    assert evolution_instance_owner("shop--eu-main") == ("shop", "eu-main")
    for foreign in ("someone-else", "--x", "x--", "a--b--c"):
        assert evolution_instance_owner(foreign) is None


def test_the_bodies_follow_the_pinned_facts() -> None:
    facts = pinned_evolution()
    body = _desired().create_body()
    assert body["integration"] in facts.integrations
    assert set(body["webhook"]) == facts.webhook_fields
    assert body["webhook"]["headers"] == {"jwt_key": SECRET} and body["webhook"]["byEvents"] is False
    assert set(SETTINGS) == facts.settings_required
    assert set(WHATSAPP_EVENTS) <= facts.webhook_events  # every event a manifest may declare is accepted


def test_missing_is_created_and_converged_is_unchanged() -> None:
    desired = _desired()
    assert [c.action for c in instance_changes(desired, None)] == ["create"]
    assert instance_changes(desired, _as_evolution_holds(desired)) == []


def test_each_difference_is_named_without_its_value() -> None:
    desired = _desired()
    held = _as_evolution_holds(desired)
    assert held.webhook is not None
    drifted = ObservedInstance(
        held.evolution_name,
        TOKEN,
        webhook={**held.webhook, "events": [], "headers": {"jwt_key": "old"}, "webhookByEvents": True},
        settings={**SETTINGS, "rejectCall": True},
    )
    changes = instance_changes(desired, drifted)
    assert [c.line() for c in changes] == [
        "whatsapp instance shop--orders: set webhook (events, webhook secret, byEvents)",
        "whatsapp instance shop--orders: set settings (rejectCall)",
    ]
    assert [c.action for c in instance_changes(desired, ObservedInstance("shop--orders", TOKEN))] == [
        "webhook",
        "settings",
    ]


def test_an_instance_held_with_another_token_is_not_ours() -> None:
    with pytest.raises(NotOurs) as caught:
        instance_changes(_desired(), ObservedInstance("shop--orders", "another"))
    assert TOKEN not in str(caught.value)


def test_secrets_stay_out_of_reprs() -> None:
    desired = _desired()
    for text in (repr(desired), repr(_as_evolution_holds(desired))):
        assert TOKEN not in text and SECRET not in text


def test_orphans_are_this_projects_names_no_longer_declared() -> None:
    names = ["shop--orders", "shop--old", "shop-eu--old", "crm--old", "hand-made"]
    assert orphans("shop", ["orders"], names) == ["shop--old"]


def test_a_projects_instances_are_its_names_declared_or_not() -> None:
    names = ["shop--orders", "shop--old", "shop-eu--old", "crm--old", "hand-made", "shop--a--b"]
    assert owned_by("shop", names) == ["shop--old", "shop--orders"]
    assert owned_by("shop-eu", names) == ["shop-eu--old"] and owned_by("none", names) == []


def test_a_fetch_instances_row_becomes_an_observed_instance() -> None:
    row = {"name": "shop--orders", "token": TOKEN, "connectionStatus": "open", "ownerJid": "5511999@s.whatsapp.net"}
    observed = observed_from_row(row)
    assert (observed.evolution_name, observed.state, observed.number) == ("shop--orders", "open", "5511999")


def test_show_rows_join_sealed_secrets_with_evolution() -> None:
    sealed = {"orders": (TOKEN, SECRET), "later": ("t2", "s2")}
    observed = {
        "shop--orders": ObservedInstance("shop--orders", TOKEN, "open", "5511999"),
        "shop--gone": ObservedInstance("shop--gone", "x", "close"),
        "crm--orders": ObservedInstance("crm--orders", "y", "open"),
    }
    rows = instance_rows("shop", sealed, observed, {"shop--orders": "http://hooks/x"})
    assert [(r["name"], r["state"], r["token"]) for r in rows] == [
        ("gone", "close", ""),
        ("later", "missing", "t2"),
        ("orders", "open", TOKEN),
    ]
    assert rows[2]["webhook_url"] == "http://hooks/x" and rows[2]["number"] == "5511999"
    assert set(rows[0]) == {"name", "evolution_name", "state", "number", "webhook_url", "token", "webhook_secret"}
    assert [r["state"] for r in instance_rows("shop", sealed, None, {})] == ["unknown", "unknown"]


def test_an_orphan_notice_names_the_exact_delete_command() -> None:
    assert orphan_notice("acme", "shop-eu--old-line") == (
        "no longer declared; left alone (remove it: nextmavens whatsapp delete acme/shop-eu old-line "
        "--confirm acme/shop-eu/old-line)"
    )
