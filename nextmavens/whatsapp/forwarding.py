"""What the forwarder does, without doing it: which projects' rows go where, the body posted for a row, and when a
failed row is tried again or given up. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from nextmavens.manifest.loader import ManifestSet

RowKind = Literal["message", "event"]


@dataclass(frozen=True)
class Target:
    """An active project with at least one instance declaring a webhook_url."""

    org: str
    ref: str
    urls: dict[str, str]  # instance name -> webhook_url

    @property
    def key(self) -> str:
        return f"{self.org}/{self.ref}"


def forward_targets(manifests: ManifestSet | None) -> list[Target]:
    """Suspended and absent projects' rows wait: their owner role cannot log in, and their app is not served."""
    if manifests is None:
        return []
    targets = []
    for project in manifests.projects:
        manifest = project.manifest
        urls = {i.name: i.webhook_url for i in manifest.whatsapp.instances if i.webhook_url}
        if manifest.state == "active" and urls:
            targets.append(Target(project.org, manifest.ref, urls))
    return targets


@dataclass(frozen=True)
class PendingRow:
    kind: RowKind
    id: int
    instance: str
    event: str | None  # messages: the payload's own `event` (messages.upsert, send.message)
    payload: Any
    received_at: datetime
    attempts: int  # failed attempts so far


def body(project: str, row: PendingRow) -> bytes:
    """The JSON posted (and signed) for `row`; `project` is ORG/REF."""
    document = {
        "type": row.kind,
        "project": project,
        "instance": row.instance,
        "id": row.id,
        "event": row.event,
        "payload": row.payload,
        "received_at": row.received_at.isoformat(),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class RetryPolicy:
    """After the n-th failure a row waits `first_delay_s * 2**(n-1)`, at most `max_delay_s`; the `max_attempts`-th
    failure gives it up. The defaults wait 5 s, 10 s, ... 2560 s, then 1 h: 2 h 25 min from the first failure to
    the twelfth."""

    first_delay_s: float = 5.0
    max_delay_s: float = 3600.0
    max_attempts: int = 12

    def delay_after(self, failures: int) -> float | None:
        """Seconds before the next attempt once `failures` attempts failed; None: give the row up."""
        if failures >= self.max_attempts:
            return None
        return min(self.max_delay_s, self.first_delay_s * 2 ** (failures - 1))


def in_order(rows: list[PendingRow]) -> list[PendingRow]:
    """Messages and events of a batch in the order they arrived (each table's ids are their own sequence)."""
    return sorted(rows, key=lambda r: (r.received_at, r.kind, r.id))
