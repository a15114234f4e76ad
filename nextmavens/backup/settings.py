"""Where backups read their configuration: the environment the systemd units set from group data.

Secrets are never values here, only paths to files on the host (0600): the bot token
(`NEXTMAVENS_TELEGRAM_TOKEN_FILE`). The chat id and the age recipient (a public key) are not secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nextmavens import files
from nextmavens.backup.telegram import DEFAULT_API_BASE, RetryPolicy, TelegramClient
from nextmavens.control.crypto import DEFAULT_MASTER_KEY
from nextmavens.pgtools import pg_bin_dir, pg_tool

# Chunks stay below the Bot API's 20 MB download limit with margin for either reading of "MB".
DEFAULT_CHUNK_BYTES = 19_000_000
CONTROL_KEY = "_platform/control"
MASTER_KEY_KEY = "_platform/master-key"  # the engine's master key, age-encrypted (nextmavens.backup.masterkey)
MANIFESTS_KEY = "_platform/manifests"  # the manifest repository as a git bundle (nextmavens.backup.manifests)


class ConfigError(Exception):
    pass


def read_secret_file(path: Path) -> str:
    try:
        return files.read_secret_file(path)
    except files.SecretFileError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class TelegramSettings:
    token_file: Path
    chat_id: str
    api_base: str = DEFAULT_API_BASE
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def client(self) -> TelegramClient:
        return TelegramClient(
            token=read_secret_file(self.token_file),
            chat_id=self.chat_id,
            api_base=self.api_base,
            retry=self.retry,
        )


@dataclass(frozen=True)
class BackupSettings:
    dsn: str = field(repr=False)
    recipient: str  # the operator's age public key; the private half never touches the host
    telegram: TelegramSettings
    projects_dir: Path | None = None
    work_dir: Path = Path("/var/tmp")
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    pg_bin: Path | None = None
    age_bin: str = "age"
    master_key: Path | None = None  # the engine's master key file: backed up with the control database
    lock_timeout_s: float = 60.0  # how long `restore --replace` waits for a running apply

    def __post_init__(self) -> None:
        if not 0 < self.chunk_bytes < 20_000_000:
            raise ConfigError("backup chunks must be below 20 MB: Telegram bots cannot download larger files")

    def tool(self, name: str) -> str:
        return pg_tool(name, folder=self.pg_bin)


def telegram_from_env(env: dict[str, str] | None = None) -> TelegramSettings | None:
    env = dict(os.environ if env is None else env)
    token_file = env.get("NEXTMAVENS_TELEGRAM_TOKEN_FILE")
    chat_id = env.get("NEXTMAVENS_TELEGRAM_CHAT_ID")
    if not chat_id and env.get("NEXTMAVENS_TELEGRAM_CHAT_ID_FILE"):
        chat_id = read_secret_file(Path(env["NEXTMAVENS_TELEGRAM_CHAT_ID_FILE"]))
    if not token_file or not chat_id:
        return None
    defaults = RetryPolicy()
    retry = RetryPolicy(
        attempts=int(env.get("NEXTMAVENS_TELEGRAM_RETRIES", defaults.attempts)),
        base_delay=float(env.get("NEXTMAVENS_TELEGRAM_RETRY_DELAY", defaults.base_delay)),
    )
    return TelegramSettings(
        token_file=Path(token_file),
        chat_id=chat_id,
        api_base=env.get("NEXTMAVENS_TELEGRAM_API", DEFAULT_API_BASE),
        retry=retry,
    )


def settings_from_env(env: dict[str, str] | None = None, require_recipient: bool = True) -> BackupSettings:
    env = dict(os.environ if env is None else env)
    missing = [
        name
        for name in ("NEXTMAVENS_DSN", "NEXTMAVENS_TELEGRAM_TOKEN_FILE", "NEXTMAVENS_TELEGRAM_CHAT_ID")
        if not env.get(name) and not (name.endswith("CHAT_ID") and env.get(name + "_FILE"))
    ]
    recipient = env.get("NEXTMAVENS_BACKUP_RECIPIENT", "")
    if not recipient and env.get("NEXTMAVENS_BACKUP_RECIPIENT_FILE"):
        recipient = Path(env["NEXTMAVENS_BACKUP_RECIPIENT_FILE"]).read_text().strip()
    if not recipient and require_recipient:
        missing.append("NEXTMAVENS_BACKUP_RECIPIENT")
    if missing:
        raise ConfigError("missing settings: " + ", ".join(missing))
    telegram = telegram_from_env(env)
    assert telegram is not None
    return BackupSettings(
        dsn=env["NEXTMAVENS_DSN"],
        recipient=recipient,
        telegram=telegram,
        # The same setting and default as the engine's --projects.
        projects_dir=Path(env.get("NEXTMAVENS_PROJECTS") or "projects"),
        work_dir=Path(env.get("NEXTMAVENS_BACKUP_WORK_DIR", "/var/tmp")),
        chunk_bytes=int(env.get("NEXTMAVENS_BACKUP_CHUNK_BYTES", DEFAULT_CHUNK_BYTES)),
        pg_bin=pg_bin_dir(env),
        # The same settings and defaults as the engine's --master-key and --lock-timeout.
        master_key=Path(env.get("NEXTMAVENS_MASTER_KEY") or _default_master_key()),
        lock_timeout_s=float(env.get("NEXTMAVENS_LOCK_TIMEOUT") or 60.0),
    )


def _default_master_key() -> str:
    return DEFAULT_MASTER_KEY
