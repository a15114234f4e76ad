"""Pairing a phone with an instance: poll Evolution until the session is open, showing each new QR code (or
pairing code) as it comes, within a bounded time.

Evolution's early connect answers hold no code yet ({count: 0}) and a QR code is replaced every ~45 s, so the
loop asks again every few seconds and shows a code only when it changed. `refused` (the QR limit) ends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from nextmavens.whatsapp.pairing import (
    OPEN,
    REFUSED,
    REFUSED_HINT,
    ConnectAnswer,
    Paired,
    paired_from_row,
    read_connect,
)

if TYPE_CHECKING:
    from nextmavens.edge.clients.evolution import EvolutionApi

POLL_INTERVAL_S = 2.5
PAIRING_TIMEOUT_S = 180.0


class PairingFailed(Exception):
    """The instance cannot be paired now; the message says why and what to do. It holds no secret."""


def wait_for_pairing(
    api: EvolutionApi,
    name: str,
    show: Callable[[ConnectAnswer], None],
    number: str | None = None,
    timeout_s: float = PAIRING_TIMEOUT_S,
    interval_s: float = POLL_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Paired:
    """The phone paired with `name`, once its state is open. `show` gets each new code; with `number`, Evolution
    is asked for a pairing code for that phone as well."""
    deadline = clock() + timeout_s
    shown: tuple[str | None, str | None] | None = None
    while True:
        state = api.connection_state(name)
        if state == "missing":
            raise PairingFailed(f"Evolution has no instance {name} (apply creates the instances a manifest declares)")
        if state == REFUSED:
            raise PairingFailed(REFUSED_HINT)
        if state != OPEN:
            answer = read_connect(api.connect(name, number))
            state = answer.state or state
            codes = (answer.code, answer.pairing_code)
            if state != OPEN and any(codes) and codes != shown:
                show(answer)
                shown = codes
        if state == OPEN:
            return paired_from_row(api.fetch_instance(name))
        if clock() >= deadline:
            raise PairingFailed(
                f"no phone was paired within {timeout_s:.0f} s (state {state or 'unknown'}): run the same connect "
                "command again for a new code"
            )
        sleep(interval_s)
