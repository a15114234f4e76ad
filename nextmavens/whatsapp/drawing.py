"""Drawing a pairing's codes in the terminal: each new QR code (or pairing code) as `nextmavens whatsapp connect`
shows it, redrawn in place on a terminal. click and the QR renderer only, so the developer commands' fast start
can draw it."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from nextmavens.whatsapp.pairing import ConnectAnswer


class _Screen:
    """Draws each new code below the last; on a terminal the previous drawing is erased first (a redraw)."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.drawn_lines = 0

    def draw(self, text: str) -> None:
        if self.tty and self.drawn_lines:
            # up to the previous drawing's first line, erase from there down (kept: click strips escapes otherwise)
            click.echo(f"\x1b[{self.drawn_lines}F\x1b[J", nl=False, color=True)
        click.echo(text)
        self.drawn_lines = text.count("\n") + 1


def drawing(number: str | None, light_background: bool) -> Callable[[ConnectAnswer], None]:
    """Draws each new code: the pairing code for `number`, else the QR code, in place on a terminal."""
    from nextmavens.whatsapp.qr import qr_text

    screen = _Screen(sys.stdout.isatty())

    def show(answer: ConnectAnswer) -> None:
        if number is not None:
            if answer.pairing_code:
                screen.draw(
                    f"Pairing code for {number}: {answer.pairing_code}\n"
                    "On the phone: WhatsApp > Linked devices > Link a device > Link with phone number."
                )
            return
        if answer.code:
            screen.draw(
                qr_text(answer.code, light_background) + "\nScan with WhatsApp > Linked devices > Link a "
                "device (a new code replaces this one every ~45 s)."
            )

    return show
