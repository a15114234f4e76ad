"""The health monitor's WhatsApp checks: Evolution's instance states (fetchInstances, through the edge's client),
tracked across runs in the monitor's state folder, judged by nextmavens.monitor.whatsappstates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nextmavens.monitor.state import load_json, save_json
from nextmavens.monitor.whatsappstates import CHECK_PREFIX, observed_states, stuck_checks, stuck_limit_s, track

if TYPE_CHECKING:
    from nextmavens.edge.clients.evolution import EvolutionApi

WHATSAPP_FILE = "whatsapp.json"  # instance -> {"state", "since"}, between health runs
API_CHECK = "whatsapp-api"


def whatsapp_checks(
    connect: Callable[[], EvolutionApi | None],
    state_file: Path,
    previous: Mapping[str, Any],
    now: float,
    env: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """This run's WhatsApp checks (none on a host without Evolution). `previous`: the health state last recorded;
    when Evolution cannot be asked, its instances keep their last checks and one check says why (an outage is one
    alert, not every instance recovering). ValueError for a bad NEXTMAVENS_WHATSAPP_STUCK_MINUTES."""
    from nextmavens.cliparts import Failure
    from nextmavens.edge.clients.http import AdminApiError

    limit_s = stuck_limit_s(env)
    try:
        api = connect()
        if api is None:
            return {}
        rows = api.fetch_instances()
    except (AdminApiError, Failure) as exc:
        kept = {k: v for k, v in previous.items() if k.startswith(CHECK_PREFIX)}
        return kept | {API_CHECK: {"ok": False, "detail": str(exc)[:200]}}
    history = track(load_json(state_file), observed_states(rows), now)
    save_json(state_file, history)
    return stuck_checks(history, now, limit_s) | {API_CHECK: {"ok": True, "detail": f"{len(history)} instance(s)"}}


def evolution_from_edge(edge_config: str | None) -> EvolutionApi | None:
    """The host's Evolution API from its edge settings file (NEXTMAVENS_EDGE_CONFIG); None without one or without
    Evolution in it; Failure naming the file when it cannot be read."""
    if not edge_config:
        return None
    from nextmavens.edge.hostruntime import evolution_api
    from nextmavens.edge.step import load_edge

    return evolution_api(load_edge(Path(edge_config)))
