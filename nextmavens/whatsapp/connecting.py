"""Pairing a phone with an instance: poll Evolution until the session is open, showing each new QR code (or
pairing code) as it comes, within a bounded time.

Evolution's early connect answers hold no code yet ({count: 0}) and a QR code is replaced every ~45 s, so the
loop asks again every few seconds and shows a code only when it changed. `refused` (the QR limit) ends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

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


class PairingTarget(Protocol):
    """An instance to pair, reached one way or another (Evolution itself, or the platform service's API)."""

    def state(self) -> str:
        """open, connecting, close, refused, or MISSING when there is no such instance."""
        ...

    def connect(self, number: str | None) -> ConnectAnswer: ...

    def paired(self) -> Paired: ...

    def missing(self) -> str:
        """What to say when the instance does not exist."""
        ...


MISSING = "missing"  # the state of an instance that does not exist (as EvolutionApi.connection_state says it)


class EvolutionTarget:
    """An instance in Evolution, by its Evolution name."""

    def __init__(self, api: EvolutionApi, name: str) -> None:
        self.api = api
        self.name = name

    def state(self) -> str:
        return self.api.connection_state(self.name)

    def connect(self, number: str | None) -> ConnectAnswer:
        return read_connect(self.api.connect(self.name, number))

    def paired(self) -> Paired:
        return paired_from_row(self.api.fetch_instance(self.name))

    def missing(self) -> str:
        return f"Evolution has no instance {self.name} (apply creates the instances a manifest declares)"


def wait_for_pairing(
    target: PairingTarget,
    show: Callable[[ConnectAnswer], None],
    number: str | None = None,
    timeout_s: float = PAIRING_TIMEOUT_S,
    interval_s: float = POLL_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Paired:
    """The phone paired with `target`, once its state is open. `show` gets each new code; with `number`, a
    pairing code for that phone is asked for as well."""
    deadline = clock() + timeout_s
    shown: tuple[str | None, str | None] | None = None
    while True:
        state = target.state()
        if state == MISSING:
            raise PairingFailed(target.missing())
        if state == REFUSED:
            raise PairingFailed(REFUSED_HINT)
        if state != OPEN:
            answer = target.connect(number)
            state = answer.state or state
            codes = (answer.code, answer.pairing_code)
            if state != OPEN and any(codes) and codes != shown:
                show(answer)
                shown = codes
        if state == OPEN:
            return target.paired()
        if clock() >= deadline:
            raise PairingFailed(
                f"no phone was paired within {timeout_s:.0f} s (state {state or 'unknown'}): run the same connect "
                "command again for a new code"
            )
        sleep(interval_s)
