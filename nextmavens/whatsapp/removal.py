"""Removing WhatsApp instances from Evolution: one (`whatsapp delete`) or all of a project's (`destroy`).

A project's instances are found before anything is dropped: a destroy that cannot reach Evolution stops there,
rather than leave paired phone sessions behind that no command can name once the project is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nextmavens.cliparts import Failure
from nextmavens.naming import evolution_instance_name

if TYPE_CHECKING:
    from nextmavens.edge.clients.evolution import EvolutionApi

LEAVE_FLAG = "--leave-whatsapp"


def remove_from_evolution(api: EvolutionApi, evolution_name: str) -> list[str]:
    """Log the instance out of WhatsApp and delete it; what was done, one line each (names only)."""
    if api.connection_state(evolution_name) == "missing":
        return [f"{evolution_name} was not in Evolution"]
    logged_out = api.logout(evolution_name)
    api.delete(evolution_name)
    session = "logged out" if logged_out else "had no WhatsApp session"
    return [f"{evolution_name} {session}", f"{evolution_name} deleted from Evolution"]


def instances_before_destroy(api: EvolutionApi | None, project: str, ref: str, sealed: Sequence[str]) -> list[str]:
    """Evolution names of the project's instances (declared or orphaned), read before destroy drops anything.
    `sealed`: its instances with sealed secrets; without any, apply never made one and Evolution is not asked."""
    if not sealed:
        return []
    from nextmavens.edge.clients.http import AdminApiError

    names = ", ".join(evolution_instance_name(ref, name) for name in sorted(sealed))
    if api is None:
        reason = "no --edge-config or NEXTMAVENS_EDGE_CONFIG naming Evolution (evolution_api_url and its key)"
    else:
        try:
            from nextmavens.edge.whatsappinstances import owned_by  # the edge loads only for a destroy that needs it

            return owned_by(ref, [str(row.get("name") or "") for row in api.fetch_instances()])
        except AdminApiError as exc:
            reason = str(exc)
    raise Failure(
        f"{project} has WhatsApp instances ({names}) that destroy deletes from Evolution, which it cannot reach: "
        f"{reason}. Start Evolution and pass --edge-config with its settings, or pass {LEAVE_FLAG} to destroy "
        "the project and leave them in Evolution (their phone sessions stay paired, managed by nothing); "
        "nothing was dropped"
    )


def remove_project_instances(api: EvolutionApi, evolution_names: Sequence[str], dropped: str) -> list[str]:
    """Each of a destroyed project's instances logged out and deleted; `dropped` says what destroy did before.
    A failure keeps the project's secrets (the caller forgets them after): destroy run again finishes the job."""
    from nextmavens.edge.clients.http import AdminApiError

    done: list[str] = []
    for name in evolution_names:
        try:
            done += remove_from_evolution(api, name)
        except AdminApiError as exc:
            so_far = "; ".join(done) or "nothing"
            raise Failure(
                f"{dropped}, but deleting WhatsApp instance {name} failed: {exc} (done in Evolution: {so_far}). "
                "The project's secrets are kept: run the same destroy again once Evolution answers"
            ) from None
    return done
