"""Kong's admin API in DB-less mode: load the whole declarative config with `POST /config`.

Kong validates the document and swaps it in atomically; when it refuses one, the running config stays. We
send only configs our model already validated, ask Kong to skip an identical one (`check_hash=1`, answered
304), retry a bounded number of times while Kong answers 429 (still loading), and report refusals (400)
with every key scrubbed from Kong's message. Contract: kong/api/routes/config.lua (201 on success).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nextmavens.edge.clients.http import AdminApiError, check_internal, request_json, scrub
from nextmavens.edge.kong import KongConfig, kong_json
from nextmavens.files import write_atomic


class KongLoadError(AdminApiError):
    """Kong refused the config (or could not be reached); the running config is unchanged."""


@dataclass(frozen=True)
class KongLoadResult:
    changed: bool
    configuration_hash: str | None = None


def _secrets_of(config: KongConfig) -> list[str]:
    return [k.key for c in config.consumers for k in c.keyauth_credentials]


@dataclass
class KongAdmin:
    base_url: str  # e.g. http://127.0.0.1:8001: reached only inside the host
    timeout: float = 30.0
    state_file: Path | None = None  # last config Kong accepted (0600: it holds keys)
    max_attempts: int = 3  # 429 "Currently loading previous configuration" is retried, bounded
    busy_wait_s: float = 2.0

    def __post_init__(self) -> None:
        self.base_url = check_internal(self.base_url)

    def status(self) -> dict[str, Any]:
        status, body = request_json("GET", f"{self.base_url}/status", timeout=self.timeout)
        if status != 200 or not isinstance(body, dict):
            raise AdminApiError(f"GET /status answered {status}", status)
        return body

    def load(self, config: KongConfig) -> KongLoadResult:
        text = kong_json(config)
        secrets = _secrets_of(config)
        for attempt in range(1, self.max_attempts + 1):
            try:
                status, body = request_json(
                    "POST",
                    f"{self.base_url}/config?check_hash=1",
                    {"config": text},
                    timeout=self.timeout,
                    secrets=secrets,
                )
            except AdminApiError as exc:
                raise KongLoadError(f"Kong not reached; running config unchanged: {exc}") from None
            if status != 429 or attempt == self.max_attempts:
                break
            time.sleep(self.busy_wait_s)  # Kong is still loading a previous config
        if status == 304:
            return KongLoadResult(changed=False)
        if status in (200, 201):
            self._remember(text)
            configuration_hash = None
            try:
                configuration_hash = self.status().get("configuration_hash")
            except AdminApiError:
                pass
            return KongLoadResult(changed=True, configuration_hash=configuration_hash)
        detail = json.dumps(body, sort_keys=True) if body is not None else ""
        raise KongLoadError(
            f"Kong refused the config ({status}); running config unchanged: {scrub(detail, secrets)}", status
        )

    def _remember(self, text: str) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_file, text, 0o600)
