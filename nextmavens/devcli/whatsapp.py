"""`nextmavens whatsapp connect`: pairing a phone with an instance, through Evolution on the host or through the
platform service's API (POST .../whatsapp/{instance}/connect, GET .../status) from a laptop with a login; the same
loop (whatsapp/connecting.py) and drawing either way. It stands here, above both the host's whatsapp commands and
the API client, because it chooses between them. Light at import (click, the API client, the pairing loop): the
developer commands' fast start (nextmavens.entry) runs it; the host's Evolution path is imported when used."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click

from nextmavens.clioptions import edge_option
from nextmavens.naming import INSTANCE_NAME_PATTERN
from nextmavens.remote.api import ApiClient, RemoteError, path_of
from nextmavens.remote.credentials import uses_api
from nextmavens.remote.output import DevFailure, say, show
from nextmavens.remote.session import api_errors, chosen_project, client_for
from nextmavens.whatsapp import connecting
from nextmavens.whatsapp.drawing import drawing
from nextmavens.whatsapp.pairing import ConnectAnswer, InvalidMessage, Paired, check_number


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


@click.command("connect")
@click.argument("names", nargs=-1, required=True, metavar="[ORG/REF] INSTANCE")
@click.option(
    "--number",
    default=None,
    help="The phone's number (digits, country code first): show an 8-character "
    "pairing code to type on that phone instead of a QR code.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=180,
    show_default=True,
    help="Seconds to wait for the phone before giving up.",
)
@click.option("--light-background", is_flag=True, help="Draw the QR code for a terminal with a light background.")
@edge_option
def connect(
    names: tuple[str, ...], number: str | None, timeout: float, light_background: bool, edge_config: Path | None
) -> None:
    """Pair a phone with an instance: shows Evolution's QR code (redrawn when it changes) until WhatsApp on the
    phone scans it (Linked devices), then the paired number and profile name. ORG/REF defaults to the project
    this folder is linked to (.nextmavens/project).

    With --edge-config it asks Evolution on the host; without it, and with a login (`nextmavens login`, or
    NEXTMAVENS_URL and NEXTMAVENS_TOKEN) while NEXTMAVENS_DSN is not set, it goes through the platform service."""
    if len(names) > 2:
        raise DevFailure("connect takes [ORG/REF] INSTANCE")
    org, ref = chosen_project(names[0] if len(names) == 2 else None)  # ORG/REF as given, else the linked one
    project, instance = f"{org}/{ref}", names[-1]
    if not re.fullmatch(INSTANCE_NAME_PATTERN, instance):
        raise DevFailure(f"{instance!r} is not an instance name (lowercase letters, digits and single hyphens)")
    if number is not None:
        try:
            check_number(number, "--number")
        except InvalidMessage as exc:
            raise DevFailure(str(exc)) from None
    draw = drawing(number, light_background)
    through_api = edge_config is None and uses_api()
    try:
        if through_api:
            say(f"Connecting {project} {instance} (through the platform service); waiting up to {timeout:.0f} s.")
            paired = pair_through_api(org, ref, instance, draw, number, timeout)
        else:
            from nextmavens.whatsapp.cli import instance_name, pair_through_evolution

            name = instance_name(project, instance)
            say(f"Connecting {project} {instance} ({name}); waiting up to {timeout:.0f} s.")
            paired = pair_through_evolution(project, name, draw, number, timeout, edge_config)
    except connecting.PairingFailed as exc:
        raise DevFailure(f"{project} {instance}: {exc}") from None
    who = f" ({paired.profile_name})" if paired.profile_name else ""
    show(f"{project} {instance} is connected: +{paired.number}{who}")
