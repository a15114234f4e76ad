"""The forwarder's pure decisions: which projects' rows go where, the body posted, the backoff and its bound."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from nextmavens.manifest.loader import load_manifests
from nextmavens.whatsapp.forwarding import PendingRow, RetryPolicy, body, forward_targets, in_order
from tests.support.projects import write_project

AT = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def test_only_active_projects_with_a_webhook_url_are_targets(tmp_path: Path) -> None:
    hooked = {"instances": [{"name": "orders", "webhook_url": "https://app.example/wa"}, {"name": "support"}]}
    write_project(tmp_path, "acme", "shop", whatsapp=hooked)
    write_project(tmp_path, "acme", "paused", state="suspended", whatsapp=hooked)
    write_project(tmp_path, "acme", "quiet", whatsapp={"instances": [{"name": "support"}]})
    write_project(tmp_path, "globex", "web")
    [target] = forward_targets(load_manifests(tmp_path))
    assert (target.key, target.urls) == ("acme/shop", {"orders": "https://app.example/wa"})
    assert forward_targets(None) == []


def test_the_body_names_project_instance_row_and_carries_the_stored_payload() -> None:
    payload = {"event": "messages.upsert", "data": {"key": {"id": "ABC"}, "message": {"conversation": "héllo"}}}
    row = PendingRow("message", 42, "orders", "messages.upsert", payload, AT, 0)
    assert json.loads(body("acme/shop", row)) == {
        "type": "message",
        "project": "acme/shop",
        "instance": "orders",
        "id": 42,
        "event": "messages.upsert",
        "payload": payload,
        "received_at": "2026-12-02T08:00:00+00:00",
    }


def test_backoff_doubles_from_five_seconds_up_to_an_hour_then_gives_up_at_the_twelfth_failure() -> None:
    policy = RetryPolicy()
    delays = [policy.delay_after(n) for n in range(1, 13)]
    assert delays[:4] == [5, 10, 20, 40]
    assert delays[10] == 3600 and delays[11] is None
    assert sum(d for d in delays if d is not None) == 8715  # the docstring's 2 h 25 min
    assert RetryPolicy(first_delay_s=0.1, max_delay_s=0.3, max_attempts=4).delay_after(3) == 0.3


def test_a_batch_goes_in_arrival_order_across_both_tables() -> None:
    later = AT.replace(second=5)
    rows = [
        PendingRow("message", 9, "orders", "messages.upsert", {}, later, 0),
        PendingRow("event", 3, "orders", "connection.update", {}, AT, 0),
        PendingRow("message", 8, "orders", "messages.upsert", {}, AT, 0),
    ]
    assert [(r.kind, r.id) for r in in_order(rows)] == [("event", 3), ("message", 8), ("message", 9)]
