"""A QR code as terminal text and as a PNG, from the raw string Evolution answers as `code`. Pure.

The text packs two rows of modules into one line with half-block characters, so the code keeps its square shape
in a terminal's tall cells. It needs no colour: light modules (and the quiet zone) are drawn as blocks in the
terminal's foreground, dark modules are left blank, as a dark-background terminal shows them; `light_background`
draws the dark modules instead, for a light one.
"""

from __future__ import annotations

import io

import segno

QUIET_ZONE = 4  # modules of light margin around the code, as the QR standard asks; phones fail without it
PNG_SCALE = 8  # pixels per module in the PNG
ERROR_LEVEL = "l"  # the smallest code for the text: scanned from a screen, it needs no damage tolerance

# (upper drawn, lower drawn) -> the character drawing them
HALF_BLOCKS = {(True, True): "\u2588", (True, False): "\u2580", (False, True): "\u2584", (False, False): " "}


def _symbol(code: str) -> segno.QRCode:
    if not code:
        raise ValueError("no QR code text")
    return segno.make_qr(code, error=ERROR_LEVEL, boost_error=False)


def qr_matrix(code: str, border: int = QUIET_ZONE) -> list[list[bool]]:
    """The code's modules with the quiet zone, row by row: True is dark."""
    return [[bool(module) for module in row] for row in _symbol(code).matrix_iter(border=border)]


def qr_text(code: str, light_background: bool = False, border: int = QUIET_ZONE) -> str:
    """The code as lines of half-block characters (no trailing newline)."""
    rows = qr_matrix(code, border)
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # a light row under the quiet zone: blank on a light background
    lines = []
    for upper, lower in zip(rows[::2], rows[1::2], strict=True):
        pairs = zip(upper, lower, strict=True)
        drawn = pairs if light_background else ((not u, not d) for u, d in pairs)
        lines.append("".join(HALF_BLOCKS[pair] for pair in drawn))
    return "\n".join(lines)


def qr_png(code: str, scale: int = PNG_SCALE) -> bytes:
    """The code as a PNG image, black on white with the quiet zone."""
    out = io.BytesIO()
    _symbol(code).save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()
