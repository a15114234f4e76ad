"""The terminal's QR code decodes back to Evolution's code: the half-block text is turned back into a bitmap (as
a terminal shows it) and read by a real QR decoder (zxing-cpp)."""

from __future__ import annotations

import pytest
import zxingcpp

from nextmavens.whatsapp.qr import HALF_BLOCKS, QUIET_ZONE, qr_matrix, qr_png, qr_text

# The shape of a real Baileys code: a ref, then the public keys and the advertising secret (base64), comma-separated
CODE = (
    "2@y8Sx4hQ9Zb4l0qk7u7Y1sM6c0Vf3t2mW6nJm8o9QpRrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWx,"
    "Xb1c2D3e4F5g6H7i8J9k0LmNoPqRsTuVwXyZ0123456=,Ab9c8D7e6F5g4H3i2J1k0LmNoPqRsTuVwXyZ012345=,"
    "QWERTYUIOPASDFGHJKLZXCVBNM0123456789qwertyu="
)
SCALE = 4  # pixels per module, as a phone's camera sees enough of them


def _bitmap(text: str, light_background: bool) -> tuple[bytes, int, int]:
    """Grayscale pixels of the text as a terminal shows it: drawn half-blocks in the foreground colour (light on
    a dark background, dark on a light one), blanks in the background colour."""
    halves = {char: pair for pair, char in HALF_BLOCKS.items()}
    drawn, blank = (0, 255) if light_background else (255, 0)
    rows: list[list[int]] = []
    for line in text.split("\n"):
        upper = [drawn if halves[c][0] else blank for c in line]
        lower = [drawn if halves[c][1] else blank for c in line]
        rows += [upper, lower]
    pixels = bytearray()
    for row in rows:
        scaled = bytes(v for v in row for _ in range(SCALE))
        pixels += scaled * SCALE
    return bytes(pixels), len(rows[0]) * SCALE, len(rows) * SCALE


@pytest.mark.parametrize("light_background", [False, True])
def test_the_terminal_qr_code_decodes_back_to_the_code(light_background: bool) -> None:
    text = qr_text(CODE, light_background)
    assert set(text) <= set(HALF_BLOCKS.values()) | {"\n"}  # no colour, no escape sequence
    pixels, width, height = _bitmap(text, light_background)
    image = memoryview(pixels).cast("B", (height, width))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode, try_invert=False)
    assert [b.text for b in found] == [CODE]


def test_the_text_keeps_the_quiet_zone_and_packs_two_rows_a_line() -> None:
    matrix = qr_matrix(CODE)
    lines = qr_text(CODE).split("\n")
    assert len(lines) == (len(matrix) + 1) // 2 and {len(line) for line in lines} == {len(matrix[0])}
    # on a dark terminal the quiet zone is drawn light: full blocks around the symbol
    assert lines[0] == "\u2588" * len(matrix[0]) and all(line[:QUIET_ZONE].strip("\u2588") == "" for line in lines)
    assert qr_text(CODE, light_background=True).split("\n")[0].strip() == ""


def test_another_code_draws_another_symbol_and_an_empty_code_is_refused() -> None:
    assert qr_text(CODE) != qr_text(CODE + "x")
    with pytest.raises(ValueError, match="no QR code"):
        qr_text("")


def test_the_png_is_a_png_of_the_code_with_its_quiet_zone() -> None:
    png = qr_png(CODE, scale=2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")
    assert width == len(qr_matrix(CODE)) * 2
