"""The collector's error tracking: every minute each project's 5xx through ErrorWatch (errors.py, pure); a rise is
sent to Telegram (the alerts every monitor uses) with the top paths and the project's container's last log lines,
and stored in the control database's `alerts` table, which the dashboard lists."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

import psycopg

from nextmavens.control.store import monitoring
from nextmavens.metrics.accesslog import Traffic
from nextmavens.metrics.collector import Collector
from nextmavens.metrics.errors import ErrorWatch, Rise

LOG_LINES = 20


def service_of(paths: list[tuple[str, int]]) -> str:
    """The project's service that answered the top failing path (Kong's routes: /auth/v1, /storage/v1, else REST)."""
    top = paths[0][0] if paths else ""
    if top.startswith("/auth/"):
        return "auth"
    if top.startswith("/storage/"):
        return "storage"
    return "rest"


class ErrorAlerts:
    def __init__(self, collector: Collector, send: Callable[[str], bool] | None = None) -> None:
        self.collector = collector
        self.watch = ErrorWatch()
        self.send = send

    def _send(self, text: str) -> bool:
        if self.send is None:
            from nextmavens.backup.alerts import alerts_from_env  # imported on the first alert only

            self.send = alerts_from_env().send
        return self.send(text)

    def last_lines(self, scope: str, service: str) -> list[str]:
        docker = self.collector.sources.docker
        ref = scope.split("/", 1)[1]
        for container in self.collector.containers:
            if docker is not None and container.project == f"nm-{ref}" and container.service == service:
                try:
                    return docker.last_lines(container.id, LOG_LINES)
                except Exception as exc:  # noqa: BLE001 - the alert goes out without them
                    return [f"(logs unavailable: {type(exc).__name__})"]
        return []

    def on_minute(self, minute: int, samples: dict[str, dict[str, float]], traffic: dict[str, Traffic]) -> None:
        scopes = {f"{org}/{ref}" for ref, org in self.collector.projects.items()}
        self.watch.forget(scopes)
        for scope in sorted(scopes):
            seen = traffic.get(scope) or Traffic()
            rise = self.watch.observe(scope, seen.requests, seen.server_errors, Counter(seen.error_paths))
            if rise is not None:
                self.alert(minute, rise)

    def alert(self, minute: int, rise: Rise) -> None:
        service = service_of(rise.top_paths)
        lines = self.last_lines(rise.scope, service)
        text = rise.message()
        if lines:
            text += f"\nLast lines of {service}:\n" + "\n".join(line[:300] for line in lines)
        sent = self._send(text)
        detail = {
            "minute": minute,
            "errors": rise.errors,
            "requests": rise.requests,
            "share": round(rise.share, 4),
            "baseline_share": round(rise.baseline_share, 4),
            "top_paths": [{"path": p, "count": c} for p, c in rise.top_paths],
            "service": service,
            "log_lines": lines,
        }
        conn = self.collector.conn
        try:
            if conn is None:
                raise psycopg.OperationalError("no connection")
            monitoring.add_alert(conn, "errors", rise.scope, rise.message(), detail, sent)
        except psycopg.Error as exc:
            print(f"metrics: the alert for {rise.scope} was not stored ({type(exc).__name__})", file=sys.stderr)
