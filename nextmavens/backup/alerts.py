"""Alerts: to the operator's Telegram chat when configured, and always to stderr (the journal).

They live beside the Telegram client they are sent through; backups, drills and the monitor's checks raise them.

A failed delivery never raises: the caller's own result (a backup, a check) matters more than the alert,
and the line on stderr still reaches the journal.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from nextmavens.backup.settings import ConfigError, telegram_from_env
from nextmavens.backup.telegram import RetryPolicy, TelegramClient, TelegramError


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Alerts:
    client: TelegramClient | None = None
    host: str = field(default_factory=socket.gethostname)
    echo: Callable[[str], None] = _stderr
    sent: list[str] = field(default_factory=list)

    def send(self, text: str) -> bool:
        message = f"[{self.host}] {text}"
        self.sent.append(message)
        self.echo(f"alert: {message}")
        if self.client is None:
            return False
        try:
            self.client.send_message(message)
            return True
        except TelegramError as exc:
            self.echo(f"alert delivery failed: {exc}")
            return False


def alerts_from_env() -> Alerts:
    """Telegram when NEXTMAVENS_TELEGRAM_TOKEN_FILE and NEXTMAVENS_TELEGRAM_CHAT_ID are set, else stderr."""
    try:
        settings = telegram_from_env()
        if settings is None:
            return Alerts()
        client = settings.client()
    except (ConfigError, ValueError) as exc:
        alerts = Alerts()
        alerts.echo(f"alerts go to stderr only: {exc}")
        return alerts
    # Alerts are small and must not hold a timer up: fewer, shorter attempts than uploads.
    client.retry = RetryPolicy(attempts=3, base_delay=1.0, max_delay=5.0, total_seconds=30, request_timeout=20)
    return Alerts(client=client)
