"""The pure parts of a log stream: lines cut from the child's output, event text, and the per-token slots."""

from __future__ import annotations

from nextmavens.platform.logstream import MAX_LINE, StreamSlots, as_text, event, lines_of


def test_complete_lines_are_taken_and_a_partial_one_waits_for_the_rest() -> None:
    buffer = bytearray(b"one\ntwo\nthr")
    assert lines_of(buffer, final=False) == [b"one", b"two"]
    assert buffer == b"thr"
    buffer += b"ee\n"
    assert lines_of(buffer, final=False) == [b"three"]
    buffer += b"last without newline"
    assert lines_of(buffer, final=True) == [b"last without newline"] and not buffer


def test_an_over_long_line_is_cut_into_pieces() -> None:
    buffer = bytearray(b"x" * (MAX_LINE * 2 + 5) + b"\nnext\n")
    assert [len(line) for line in lines_of(buffer, final=False)] == [MAX_LINE, MAX_LINE, 5, 4]


def test_an_event_never_holds_a_line_break_of_its_own() -> None:
    assert as_text(b"a\rb\xff") == "ab\ufffd"
    assert event("x") == b"data: x\n\n"
    assert event('{"reason": "eof"}', "end") == b'event: end\ndata: {"reason": "eof"}\n\n'


def test_a_token_holds_at_most_its_slots_and_gets_them_back() -> None:
    slots = StreamSlots(2)
    assert slots.take("a") and slots.take("a") and not slots.take("a")
    assert slots.take("b")
    slots.give_back("a")
    assert slots.take("a") and not slots.take("a")
