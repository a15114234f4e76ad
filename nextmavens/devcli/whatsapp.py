"""Pairing a phone through the platform service's API (POST .../whatsapp/{instance}/connect, GET .../status):
the same loop and drawing as on the host (whatsapp/connecting.py), from a laptop with a login."""

from __future__ import annotations

from collections.abc import Callable

from nextmavens.remote.api import ApiClient, RemoteError, path_of
from nextmavens.remote.session import api_errors, client_for
from nextmavens.whatsapp import connecting
from nextmavens.whatsapp.pairing import ConnectAnswer, Paired


class ApiTarget:
    """A project's instance behind the platform service."""

    def __init__(self, client: ApiClient, org: str, ref: str, instance: str) -> None:
        self.client = client
        self.org, self.ref, self.instance = org, ref, instance
        self.path = path_of("v1", "projects", org, ref, "whatsapp", instance)

    def _status(self) -> dict[str, str | None]:
        answer: dict[str, str | None] = self.client.get(f"{self.path}/status")
        return answer

    def state(self) -> str:
        try:
            return str(self._status()["state"])
        except RemoteError as exc:
            if exc.status == 404 and exc.code == "not_found":
                return connecting.MISSING
            raise

    def connect(self, number: str | None) -> ConnectAnswer:
        answer = self.client.post(f"{self.path}/connect", {} if number is None else {"number": number})
        return ConnectAnswer(code=answer.get("code"), pairing_code=answer.get("pairing_code"), state=answer["state"])

    def paired(self) -> Paired:
        status = self._status()
        return Paired(number=str(status.get("number") or ""), profile_name=str(status.get("profile_name") or ""))

    def missing(self) -> str:
        return (
            f"{self.org}/{self.ref} has no WhatsApp instance {self.instance} (declare it under whatsapp.instances "
            "in the project's manifest; apply creates it)"
        )


@api_errors
def pair_through_api(
    org: str, ref: str, instance: str, show: Callable[[ConnectAnswer], None], number: str | None, timeout: float
) -> Paired:
    """connecting.wait_for_pairing through the service; its errors as every developer command's."""
    target = ApiTarget(client_for(), org, ref, instance)
    return connecting.wait_for_pairing(
        target, show, number=number, timeout_s=timeout, interval_s=connecting.POLL_INTERVAL_S
    )
