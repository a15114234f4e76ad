"""Uptime history and alerts in the control database (tables from migration 1010_uptime_alerts.sql)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class Target:
    scope: str  # org/ref
    kind: str  # api | domain | app
    name: str  # host name


def record_checks(conn: psycopg.Connection, day: date, results: list[tuple[Target, bool]]) -> None:
    """Count one check per target for `day` (UTC), in one statement."""
    if not results:
        return
    conn.execute(
        "INSERT INTO uptime_days (scope, kind, name, day, checks, up)"
        " SELECT s, k, n, %s, 1, u::int FROM unnest(%s::text[], %s::text[], %s::text[], %s::boolean[]) AS r(s, k, n, u)"
        " ON CONFLICT (scope, kind, name, day) DO UPDATE"
        " SET checks = uptime_days.checks + 1, up = uptime_days.up + EXCLUDED.up",
        (
            day,
            [t.scope for t, _ in results],
            [t.kind for t, _ in results],
            [t.name for t, _ in results],
            [ok for _, ok in results],
        ),
    )


def last_states(conn: psycopg.Connection) -> dict[Target, tuple[bool, str]]:
    """Each target's state as its last recorded change left it."""
    return {
        Target(scope, kind, name): (bool(ok), str(detail))
        for scope, kind, name, ok, detail in conn.execute(
            "SELECT DISTINCT ON (scope, kind, name) scope, kind, name, ok, detail FROM uptime_events"
            " ORDER BY scope, kind, name, at DESC, id DESC"
        )
    }


def record_change(conn: psycopg.Connection, target: Target, ok: bool, detail: str) -> None:
    conn.execute(
        "INSERT INTO uptime_events (scope, kind, name, ok, detail) VALUES (%s, %s, %s, %s, %s)",
        (target.scope, target.kind, target.name, ok, detail),
    )


def uptime_by_day(conn: psycopg.Connection, scope: str, since: date) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "name": name, "day": day.isoformat(), "checks": checks, "up": up,
         "uptime_pct": round(100.0 * up / checks, 2) if checks else None}
        for kind, name, day, checks, up in conn.execute(
            "SELECT kind, name, day, checks, up FROM uptime_days WHERE scope = %s AND day >= %s"
            " ORDER BY kind, name, day",
            (scope, since),
        )
    ]


def uptime_events(conn: psycopg.Connection, scope: str, limit: int = 50) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "name": name, "at": at.isoformat(), "ok": ok, "detail": detail}
        for kind, name, at, ok, detail in conn.execute(
            "SELECT kind, name, at, ok, detail FROM uptime_events WHERE scope = %s ORDER BY at DESC, id DESC LIMIT %s",
            (scope, limit),
        )
    ]


def add_alert(conn: psycopg.Connection, kind: str, scope: str, title: str, detail: dict[str, Any], sent: bool) -> int:
    row = conn.execute(
        "INSERT INTO alerts (kind, scope, title, detail, sent) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (kind, scope, title, json.dumps(detail), sent),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Alert:
    id: int
    at: datetime
    kind: str
    scope: str
    title: str
    detail: dict[str, Any]
    sent: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "kind": self.kind, "scope": self.scope,
                "title": self.title, "detail": self.detail, "sent": self.sent}


def recent_alerts(conn: psycopg.Connection, scopes: list[str] | None = None, limit: int = 100) -> list[Alert]:
    """Newest first; only those of `scopes` when given (the dashboard passes the projects a member sees)."""
    if scopes is None:
        rows = conn.execute(
            "SELECT id, at, kind, scope, title, detail, sent FROM alerts ORDER BY at DESC, id DESC LIMIT %s", (limit,)
        )
    else:
        rows = conn.execute(
            "SELECT id, at, kind, scope, title, detail, sent FROM alerts WHERE scope = ANY(%s)"
            " ORDER BY at DESC, id DESC LIMIT %s",
            (scopes, limit),
        )
    return [Alert(int(i), at, str(k), str(s), str(t), dict(d), bool(sent)) for i, at, k, s, t, d, sent in rows]
