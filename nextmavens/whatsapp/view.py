"""What `nextmavens whatsapp show` prints: one row per instance of a project, from the control database's sealed
secrets and Evolution's answers. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nextmavens.naming import evolution_instance_name, evolution_instance_owner

if TYPE_CHECKING:
    from nextmavens.edge.whatsappinstances import ObservedInstance

UNKNOWN = "unknown"  # Evolution was not asked (no --edge-config) or did not answer
MISSING = "missing"  # sealed here, absent from Evolution (apply creates it)


def instance_rows(
    ref: str,
    sealed: Mapping[str, tuple[str, str]],
    observed: Mapping[str, ObservedInstance] | None,
    webhook_urls: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Instances with sealed secrets, and those Evolution holds under the project's names (orphans whose
    secrets are gone show no token). `observed` None: Evolution's side is unknown."""
    names = set(sealed)
    if observed is not None:
        for evolution_name in observed:
            owner = evolution_instance_owner(evolution_name)
            if owner is not None and owner[0] == ref:
                names.add(owner[1])
    rows = []
    for name in sorted(names):
        evolution_name = evolution_instance_name(ref, name)
        found = None if observed is None else observed.get(evolution_name)
        state = UNKNOWN if observed is None else (found.state if found is not None else MISSING)
        token, webhook_secret = sealed.get(name, ("", ""))
        rows.append(
            {
                "name": name,
                "evolution_name": evolution_name,
                "state": state,
                "number": found.number if found is not None else "",
                "webhook_url": webhook_urls.get(evolution_name, ""),
                "token": token,
                "webhook_secret": webhook_secret,
            }
        )
    return rows
