"""Evolution API 2.3.7's instance routes, as the edge and `nextmavens whatsapp` use them (the pinned facts:
nextmavens/upstream/facts.py EVOLUTION_2_3_7).

Every call carries the global API key in the `apikey` header. A failure is an EvolutionError whether it comes as
an error status or, as some routes do, as HTTP 200 with `{"error": true}`. Error texts are scrubbed of the
global key and of every secret the caller hands in (instance tokens, webhook secrets).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from nextmavens.edge.clients.http import AdminApiError, check_internal, request_json, scrub
from nextmavens.upstream.facts import EVOLUTION_2_3_7, EvolutionFacts

# A failed create is cleaned up asynchronously: an immediate retry meets 403 "already in use".
CREATE_RETRY_DELAYS_S = (2.0, 4.0, 8.0)


class EvolutionError(AdminApiError):
    """Evolution refused or failed a call; the message holds no secret."""


def _message(body: Any) -> str:
    """Evolution's error text: `{status, error, response: {message: [...]}}` or `{error: true, message}`."""
    if not isinstance(body, Mapping):
        return ""
    response = body.get("response")
    message = response.get("message") if isinstance(response, Mapping) else body.get("message")
    if isinstance(message, list):
        message = "; ".join(str(m) if not isinstance(m, Mapping | list) else json.dumps(m) for m in message)
    return str(message or "")


class EvolutionApi:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        facts: EvolutionFacts = EVOLUTION_2_3_7,
    ) -> None:
        if not api_key:
            raise EvolutionError("evolution: no API key (the host's EVOLUTION_API_KEY)")
        self.base_url = check_internal(base_url)
        self._key = api_key
        self.timeout = timeout
        self._sleep = sleep
        self._facts = facts

    def _call(
        self,
        route: str,
        name: str = "",
        body: Mapping[str, Any] | None = None,
        secrets: Iterable[str] = (),
        missing_ok: bool = False,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        method, path = self._facts.routes[route]
        url = self.base_url + path.format(name=quote(name, safe=""))
        if query:
            url += "?" + urlencode(query)
        hidden = [self._key, *secrets]
        status, answer = request_json(
            method, url, body, headers={"apikey": self._key}, timeout=self.timeout, secrets=hidden
        )
        if missing_ok and status == 404:
            return None
        failed_in_200 = isinstance(answer, Mapping) and answer.get("error") is True
        if status != self._facts.route_status[route] or failed_in_200:
            where = f"{method} {path.format(name=name)}"
            detail = scrub(_message(answer) or f"HTTP {status}", hidden)
            raise EvolutionError(f"evolution: {where} answered {status}: {detail}", status)
        return answer

    # --- reads -----------------------------------------------------------------------------------------
    def fetch_instances(self) -> list[dict[str, Any]]:
        """Every instance of this server's client name (raw rows; each holds its token)."""
        rows = self._call("fetch_instances")
        if not isinstance(rows, list):
            raise EvolutionError("evolution: fetchInstances did not answer a list")
        return [dict(r) for r in rows if isinstance(r, Mapping)]

    def find_webhook(self, name: str, secrets: Iterable[str] = ()) -> dict[str, Any] | None:
        found = self._call("webhook_find", name, secrets=secrets)
        return dict(found) if isinstance(found, Mapping) else None

    def find_settings(self, name: str) -> dict[str, Any] | None:
        found = self._call("settings_find", name)
        return dict(found) if isinstance(found, Mapping) else None

    def connection_state(self, name: str) -> str:
        found = self._call("connection_state", name, missing_ok=True)
        if not isinstance(found, Mapping):
            return "missing"
        instance = found.get("instance")
        return str(instance.get("state") or "") if isinstance(instance, Mapping) else ""

    def fetch_instance(self, name: str) -> dict[str, Any] | None:
        """The instance's row (owner JID, profile name, ...; it holds the token), or None when it does not exist."""
        rows = self._call("fetch_instances", query={"instanceName": name}, missing_ok=True)
        if not isinstance(rows, list):
            return None
        found = [dict(r) for r in rows if isinstance(r, Mapping) and r.get("name") == name]
        return found[0] if found else None

    # --- writes ----------------------------------------------------------------------------------------
    def create(self, body: Mapping[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
        """POST /instance/create, retried with back-off: Evolution removes a failed create's rows
        asynchronously, so the name stays taken for a moment. A wrong key (401) is not retried."""
        hidden = list(secrets)
        delays = iter(CREATE_RETRY_DELAYS_S)
        while True:
            try:
                return dict(self._call("create", body=body, secrets=hidden) or {})
            except EvolutionError as exc:
                delay = next(delays, None)
                if exc.status == 401 or delay is None:
                    raise
                self._sleep(delay)

    def set_webhook(self, name: str, webhook: Mapping[str, Any], secrets: Iterable[str]) -> None:
        self._call("webhook_set", name, {"webhook": dict(webhook)}, secrets=secrets)

    def set_settings(self, name: str, settings: Mapping[str, Any]) -> None:
        self._call("settings_set", name, dict(settings))

    def logout(self, name: str) -> bool:
        """Ends the WhatsApp session; False when there was none (Evolution answers 400 for a closed one)."""
        try:
            self._call("logout", name)
        except EvolutionError as exc:
            if exc.status == 400:
                return False
            raise
        return True

    def restart(self, name: str) -> None:
        """Reconnects the session (and reloads the webhook's flags); a closed instance is an error."""
        self._call("restart", name)

    def connect(self, name: str, number: str | None = None) -> dict[str, Any]:
        """GET /instance/connect: starts the session when closed. The answer as Evolution gives it: a QR object
        ({pairingCode, code, base64, count}; early ones only {count: 0}) or, once open, {instance: {state}}.
        `number` (digits) asks for a pairing code to type on the phone instead of scanning."""
        answer = self._call("connect", name, query={"number": number} if number else None)
        return dict(answer) if isinstance(answer, Mapping) else {}

    def send_text(self, name: str, number: str, text: str) -> str:
        """POST /message/sendText: the message's id (Evolution's key.id)."""
        answer = self._call("send_text", name, {"number": number, "text": text})
        key = answer.get("key") if isinstance(answer, Mapping) else None
        message_id = key.get("id") if isinstance(key, Mapping) else None
        if not isinstance(message_id, str) or not message_id:
            raise EvolutionError(f"evolution: sendText for {name} answered no message id")
        return message_id

    def delete(self, name: str) -> None:
        """Deletes the instance (its rows go asynchronously)."""
        self._call("delete", name)
