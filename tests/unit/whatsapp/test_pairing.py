"""Evolution's pairing answers read (pure), the number and text limits of sending, and the linked project file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nextmavens.projectlink import LINK_FILE, ProjectLinkError, linked_project
from nextmavens.whatsapp.pairing import (
    TEXT_MAX_CHARS,
    ConnectAnswer,
    InvalidMessage,
    Paired,
    check_number,
    check_text,
    paired_from_row,
    read_connect,
)


def test_connect_answers_read_as_codes_or_a_state() -> None:
    assert read_connect({"count": 0}) == ConnectAnswer(None, None, None)  # too early: ask again
    qr = {"pairingCode": None, "code": "2@abc,def", "base64": "data:image/png;base64,xx", "count": 1}
    assert read_connect(qr) == ConnectAnswer("2@abc,def", None, None)
    assert read_connect({**qr, "pairingCode": "WZYEH1YY"}).pairing_code == "WZYEH1YY"
    assert read_connect({"instance": {"instanceName": "shop--orders", "state": "open"}}).state == "open"
    assert read_connect({"code": 3, "instance": "x"}) == ConnectAnswer(None, None, None)  # odd shapes: nothing


def test_the_paired_phone_comes_from_the_owner_jid() -> None:
    row = {"ownerJid": "5511987654321@s.whatsapp.net", "profileName": "Shop"}
    assert paired_from_row(row) == Paired("5511987654321", "Shop")
    assert paired_from_row({"ownerJid": "5511987654321:12@s.whatsapp.net"}).number == "5511987654321"
    assert paired_from_row(None) == Paired("", "")


@pytest.mark.parametrize("number", ["5511987654321", "15550001234", "4915112345678"])
def test_e164_digits_are_numbers(number: str) -> None:
    assert check_number(number) == number


@pytest.mark.parametrize("number", ["+5511987654321", "0551198765432", "55 11 98765", "123", "1" * 16, "", "12a4567"])
def test_anything_else_is_not_a_number(number: str) -> None:
    with pytest.raises(InvalidMessage, match="NUMBER must be a phone number"):
        check_number(number, "NUMBER")


def test_text_is_not_blank_and_bounded() -> None:
    assert check_text("hello") == "hello"
    assert check_text("x" * TEXT_MAX_CHARS)
    for bad, why in ((" \n", "empty"), ("x" * (TEXT_MAX_CHARS + 1), "longer than")):
        with pytest.raises(InvalidMessage, match=why):
            check_text(bad)


def test_a_linked_folder_names_its_project(tmp_path: Path) -> None:
    (tmp_path / LINK_FILE).parent.mkdir()
    (tmp_path / LINK_FILE).write_text("# written by nextmavens link\nacme/shop\n")
    assert linked_project(tmp_path) == "acme/shop"


def test_no_link_or_a_bad_one_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(ProjectLinkError, match=r"no linked project here .*\.nextmavens/project does not exist"):
        linked_project(tmp_path)
    (tmp_path / LINK_FILE).parent.mkdir()
    for text in ("acme\n", "acme/shop\nacme/crm\n", "Acme/shop\n", "acme/shop/x\n", ""):
        (tmp_path / LINK_FILE).write_text(text)
        with pytest.raises(ProjectLinkError, match="must hold exactly one line ORG/REF"):
            linked_project(tmp_path)
