"""Each declared WhatsApp instance as Evolution should hold it, as it does hold it, and the difference.

Pure: plain values in, plain values out. The edge step reads Evolution (fetchInstances, webhook/find,
settings/find), hands the answers here, and writes only what `instance_changes` lists. Secrets (the instance
token and the webhook secret) are fields of the values but never part of a change's text or a repr.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nextmavens.naming import evolution_instance_name, evolution_instance_owner

# Baileys: WhatsApp Web, paired by QR code or phone number (the only integration needing no Meta account).
INTEGRATION = "WHATSAPP-BAILEYS"
# The platform's receiver; Evolution posts every subscribed event here (the path routes, the jwt_key signs).
HOOK_PATH = "/hooks/evolution/{org}/{ref}/{instance}"
# POST /settings/set requires every one of these (Evolution's defaults, made explicit so drift shows).
SETTINGS: Mapping[str, bool] = {
    "rejectCall": False,
    "groupsIgnore": False,
    "alwaysOnline": False,
    "readMessages": False,
    "readStatus": False,
    "syncFullHistory": False,
}
JWT_KEY_HEADER = "jwt_key"  # Evolution swaps this header for `Authorization: Bearer <HS256 JWT>`


def hook_url(base_url: str, org: str, ref: str, instance: str) -> str:
    return base_url.rstrip("/") + HOOK_PATH.format(org=org, ref=ref, instance=instance)


@dataclass(frozen=True)
class DesiredInstance:
    org: str
    ref: str
    instance: str
    webhook_url: str  # where Evolution posts: the platform's receiver for this instance
    events: tuple[str, ...]
    token: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    @property
    def evolution_name(self) -> str:
        return evolution_instance_name(self.ref, self.instance)

    def webhook(self) -> dict[str, Any]:
        """The nested body of POST /webhook/set (and of create's `webhook`): explicit events, one URL."""
        return {
            "enabled": True,
            "url": self.webhook_url,
            "events": sorted(self.events),
            "headers": {JWT_KEY_HEADER: self.webhook_secret},
            "byEvents": False,
            "base64": False,
        }

    def create_body(self) -> dict[str, Any]:
        return {
            "instanceName": self.evolution_name,
            "integration": INTEGRATION,
            "token": self.token,
            "qrcode": False,  # pairing is the operator's step, not apply's
            **SETTINGS,
            "webhook": self.webhook(),
        }

    def secrets(self) -> list[str]:
        return [self.token, self.webhook_secret]


@dataclass(frozen=True)
class ObservedInstance:
    """One row of fetchInstances, with the instance's webhook/find and settings/find answers."""

    evolution_name: str
    token: str = field(repr=False)
    state: str = ""  # connectionStatus: open | connecting | close
    number: str = ""
    webhook: Mapping[str, Any] | None = field(default=None, repr=False)  # holds the jwt_key
    settings: Mapping[str, Any] | None = None


def observed_from_row(row: Mapping[str, Any]) -> ObservedInstance:
    """An `Instance` row as fetchInstances returns it (webhook and settings are read separately)."""
    owner = str(row.get("ownerJid") or "")
    number = str(row.get("number") or "") or owner.split("@")[0]
    return ObservedInstance(
        evolution_name=str(row.get("name") or ""),
        token=str(row.get("token") or ""),
        state=str(row.get("connectionStatus") or ""),
        number=number,
    )


@dataclass(frozen=True)
class InstanceChange:
    evolution_name: str
    action: str  # create | webhook | settings
    detail: str  # names what differs, never a value of a secret

    def line(self) -> str:
        return f"whatsapp instance {self.evolution_name}: {self.detail}"


class NotOurs(ValueError):
    """Evolution holds the name with another token: made by hand or by something else; never overwritten."""


def instance_changes(desired: DesiredInstance, observed: ObservedInstance | None) -> list[InstanceChange]:
    """What must be written so Evolution holds `desired`; [] when it already does."""
    name = desired.evolution_name
    if observed is None:
        return [InstanceChange(name, "create", "create (token, webhook, settings)")]
    if observed.token != desired.token:
        raise NotOurs(
            f"whatsapp instance {name}: Evolution holds it with another token (made outside apply); left alone. "
            f"Delete it (`nextmavens whatsapp delete`) to let apply create it"
        )
    changes = []
    differences = webhook_differences(desired, observed.webhook)
    if differences:
        changes.append(InstanceChange(name, "webhook", "set webhook (" + ", ".join(differences) + ")"))
    differences = settings_differences(observed.settings)
    if differences:
        changes.append(InstanceChange(name, "settings", "set settings (" + ", ".join(differences) + ")"))
    return changes


def webhook_differences(desired: DesiredInstance, observed: Mapping[str, Any] | None) -> list[str]:
    """Names of the webhook fields that differ (webhook/find's row: url, enabled, events, headers,
    webhookByEvents, webhookBase64)."""
    if observed is None:
        return ["missing"]
    want = desired.webhook()
    found = []
    if observed.get("url") != want["url"]:
        found.append("url")
    if observed.get("enabled") is not True:
        found.append("enabled")
    if sorted(observed.get("events") or []) != want["events"]:
        found.append("events")
    headers = observed.get("headers") or {}
    if not isinstance(headers, Mapping) or headers.get(JWT_KEY_HEADER) != desired.webhook_secret:
        found.append("webhook secret")
    elif set(headers) != {JWT_KEY_HEADER}:
        found.append("headers")
    if observed.get("webhookByEvents") is not False:
        found.append("byEvents")
    if observed.get("webhookBase64") is not False:
        found.append("base64")
    return found


def settings_differences(observed: Mapping[str, Any] | None) -> list[str]:
    if observed is None:
        return ["missing"]
    return [key for key, value in SETTINGS.items() if observed.get(key) is not value]


def orphan_notice(org: str, evolution_name: str) -> str:
    """What an orphan report says about an instance no longer declared, with the command that removes it."""
    owner = evolution_instance_owner(evolution_name)
    if owner is None:
        return "not one of the platform's"
    project = f"{org}/{owner[0]}"
    return (
        f"no longer declared; left alone (remove it: nextmavens whatsapp delete {project} {owner[1]} "
        f"--confirm {project}/{owner[1]})"
    )


def owned_by(ref: str, observed_names: Iterable[str]) -> list[str]:
    """Evolution names of this project's instances, declared or not."""
    return sorted(n for n in observed_names if (owner := evolution_instance_owner(n)) is not None and owner[0] == ref)


def orphans(ref: str, declared: Iterable[str], observed_names: Iterable[str]) -> list[str]:
    """Evolution names of this project's instances that its manifest no longer declares (left alone)."""
    wanted = {evolution_instance_name(ref, name) for name in declared}
    return [name for name in owned_by(ref, observed_names) if name not in wanted]
