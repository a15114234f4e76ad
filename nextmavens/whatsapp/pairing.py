"""What Evolution's pairing answers mean, and the limits on what is sent through an instance. Pure.

`GET /instance/connect` answers a QR object ({pairingCode, code, base64, count}; before the first QR only
{count: 0}), or {instance: {state}} once open; connectionState names the state (open, connecting, close, and
briefly refused when the QR limit is reached).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPEN, CONNECTING, CLOSE, REFUSED = "open", "connecting", "close", "refused"
# E.164 without the +: a country code (never 0) and at most 15 digits in all
NUMBER_PATTERN = r"^[1-9][0-9]{6,14}$"
TEXT_MAX_CHARS = 4096  # one message; longer texts are split by the caller
REFUSED_HINT = (
    "Evolution stopped offering QR codes (its QR limit was reached, state refused): run the same connect command "
    "again to start a new pairing session"
)


class InvalidMessage(ValueError):
    """A number or text Evolution must not be given; the message names the field."""


def check_number(number: str, field: str = "number") -> str:
    """A phone number as digits only (E.164 without the +)."""
    if not re.fullmatch(NUMBER_PATTERN, number):
        raise InvalidMessage(f"{field} must be a phone number in digits only, country code first (E.164 without +)")
    return number


def check_text(text: str, field: str = "text") -> str:
    if not text.strip():
        raise InvalidMessage(f"{field} is empty")
    if len(text) > TEXT_MAX_CHARS:
        raise InvalidMessage(f"{field} is longer than {TEXT_MAX_CHARS} characters")
    return text


@dataclass(frozen=True)
class ConnectAnswer:
    """One connect answer: the QR code's raw text and the pairing code when Evolution has them, and the state
    when it says it (only once open)."""

    code: str | None
    pairing_code: str | None
    state: str | None


def read_connect(answer: Mapping[str, Any]) -> ConnectAnswer:
    instance = answer.get("instance")
    state = instance.get("state") if isinstance(instance, Mapping) else None
    code, pairing = answer.get("code"), answer.get("pairingCode")
    return ConnectAnswer(
        code=code if isinstance(code, str) and code else None,
        pairing_code=pairing if isinstance(pairing, str) and pairing else None,
        state=state if isinstance(state, str) and state else None,
    )


@dataclass(frozen=True)
class Paired:
    """An open instance: the phone number it is paired with and the WhatsApp profile's name."""

    number: str
    profile_name: str


def paired_from_row(row: Mapping[str, Any] | None) -> Paired:
    """From fetchInstances' row: ownerJid is `<digits>@s.whatsapp.net`."""
    row = row or {}
    owner = str(row.get("ownerJid") or "")
    return Paired(number=owner.split("@", 1)[0].split(":", 1)[0], profile_name=str(row.get("profileName") or ""))
