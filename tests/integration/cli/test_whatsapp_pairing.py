"""`nextmavens whatsapp connect` and `send` against the Evolution STAND-IN served on loopback (contract: 2.3.7's
connect, connectionState, fetchInstances and sendText): the QR code drawn again when Evolution's changes, the
paired number once open, the pairing code with --number, the QR limit (refused) and the bounded wait, the linked
project when ORG/REF is left out; send prints the message id and refuses a bad number or text before Evolution."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from nextmavens.cli import main
from nextmavens.projectlink import LINK_FILE
from nextmavens.whatsapp import connecting
from nextmavens.whatsapp import drawing as whatsapp_drawing
from nextmavens.whatsapp.qr import qr_text
from tests.support.edgesamples import settings_fields
from tests.support.standins import EvolutionStandIn, serve

KEY = "pairing-evolution-key-0123456789abcdef"
NAME = "shop--orders"


@dataclass
class Setup:
    standin: EvolutionStandIn
    edge_config: Path

    def run(self, *args: str, cwd: Path | None = None) -> Result:
        runner = CliRunner()
        if cwd is None:
            return runner.invoke(main, ["whatsapp", *args, "--edge-config", str(self.edge_config)])
        before = Path.cwd()
        os.chdir(cwd)
        try:
            return runner.invoke(main, ["whatsapp", *args, "--edge-config", str(self.edge_config)])
        finally:
            os.chdir(before)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setattr(connecting, "POLL_INTERVAL_S", 0.02)
    standin = EvolutionStandIn(KEY)
    standin.add_instance(NAME)
    key_file = tmp_path / "evolution.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    with serve(standin) as url:
        config = tmp_path / "edge.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "settings": settings_fields(evolution_api_url=url),
                    "secret_files": {"evolution_api_key": str(key_file)},
                }
            )
        )
        yield Setup(standin, config)


def test_connect_draws_each_new_qr_code_until_open_then_prints_the_number(setup: Setup) -> None:
    setup.standin.api.open_after = 4  # {count: 0}, then three QR codes, then the phone has scanned
    done = setup.run("connect", "acme/shop", "orders")
    assert done.exit_code == 0, done.output
    assert done.stdout.count("Scan with WhatsApp") == 3, done.stdout
    drawn_at = [done.stdout.index(qr_text(_standin_code(count))) for count in (1, 2, 3)]
    assert drawn_at == sorted(drawn_at)  # each of the stand-in's codes, in the order it gave them
    assert "acme/shop orders is connected: +15550001234 (Stand-in phone)" in done.stdout
    assert ("GET", f"/instance/connect/{NAME}") in setup.standin.requests


def _standin_code(count: int) -> str:
    """The stand-in's count-th QR code (standin.py _connect)."""
    return f"2@standin{count}{hashlib.sha256(f'{NAME}:{count}'.encode()).hexdigest()},{NAME},{count}"


def test_a_code_that_did_not_change_is_not_drawn_again(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.standin.api.open_after = 3
    real = setup.standin.api._connect

    def same_code(name, body, query, key):  # type: ignore[no-untyped-def]
        status, answer = real(name, body, query, key)
        if "code" in answer:
            answer = {**answer, "code": "2@always-the-same,abc,def"}
        return status, answer

    monkeypatch.setattr(setup.standin.api, "_connect", same_code)
    done = setup.run("connect", "acme/shop", "orders")
    assert done.exit_code == 0, done.output
    assert done.stdout.count("Scan with WhatsApp") == 1


def test_with_a_number_connect_shows_the_pairing_code_instead(setup: Setup) -> None:
    setup.standin.api.open_after = 3
    done = setup.run("connect", "acme/shop", "orders", "--number", "5511987654321")
    assert done.exit_code == 0, done.output
    assert "Pairing code for 5511987654321: " in done.stdout and "Scan with WhatsApp" not in done.stdout
    code = done.stdout.split("Pairing code for 5511987654321: ")[1].split()[0]
    assert len(code) == 8 and code.isalnum()
    assert "is connected: +5511987654321" in done.stdout
    bad = setup.run("connect", "acme/shop", "orders", "--number", "+55 11 98765")
    assert bad.exit_code == 1 and "--number must be a phone number in digits only" in bad.stderr


def test_an_open_instance_answers_at_once(setup: Setup) -> None:
    setup.standin.instances[NAME].update(connectionStatus="open", ownerJid="4915112345678@s.whatsapp.net",
                                         profileName="Laden")  # fmt: skip
    done = setup.run("connect", "acme/shop", "orders")
    assert done.exit_code == 0, done.output
    assert "is connected: +4915112345678 (Laden)" in done.stdout and "Scan" not in done.stdout


def test_the_qr_limit_says_to_connect_again(setup: Setup) -> None:
    setup.standin.api.open_after, setup.standin.api.refuse_after = 0, 3
    done = setup.run("connect", "acme/shop", "orders")
    assert done.exit_code == 1, done.output
    assert "QR limit was reached" in done.stderr and "run the same connect command again" in done.stderr
    assert KEY not in done.output


def test_the_wait_is_bounded(setup: Setup) -> None:
    setup.standin.api.open_after = 0
    done = setup.run("connect", "acme/shop", "orders", "--timeout", "1")
    assert done.exit_code == 1, done.output
    assert "no phone was paired within 1 s (state connecting)" in done.stderr
    assert done.stdout.count("Scan with WhatsApp") >= 2


def test_an_unknown_instance_or_no_evolution_is_said_plainly(setup: Setup, tmp_path: Path) -> None:
    missing = setup.run("connect", "acme/shop", "billing")
    assert missing.exit_code == 1 and "Evolution has no instance shop--billing" in missing.stderr
    bad_name = setup.run("connect", "acme/shop", "Orders!")
    assert bad_name.exit_code == 1 and "is not an instance name" in bad_name.stderr
    bad_project = setup.run("send", "Acme/sh op", "orders", "5511987654321", "hi")
    assert bad_project.exit_code == 1 and "is not ORG/REF" in bad_project.stderr
    no_edge = CliRunner().invoke(
        main, ["whatsapp", "connect", "acme/shop", "orders"], env={"NEXTMAVENS_EDGE_CONFIG": ""}
    )
    assert no_edge.exit_code == 1 and "pass --edge-config" in no_edge.stderr


def test_the_project_comes_from_the_linked_folder_or_is_asked_for(setup: Setup, tmp_path: Path) -> None:
    setup.standin.api.open_after = 2
    unlinked = setup.run("connect", "orders", cwd=tmp_path)
    assert unlinked.exit_code == 1
    assert "no linked project here" in unlinked.stderr and "pass ORG/REF first" in unlinked.stderr
    (tmp_path / LINK_FILE).parent.mkdir()
    (tmp_path / LINK_FILE).write_text("acme/shop\n")
    linked = setup.run("connect", "orders", cwd=tmp_path)
    assert linked.exit_code == 0, linked.output
    assert "acme/shop orders is connected" in linked.stdout


def test_send_prints_the_message_id(setup: Setup) -> None:
    setup.standin.instances[NAME]["connectionStatus"] = "open"
    done = setup.run("send", "acme/shop", "orders", "5511987654321", "Your order shipped")
    assert done.exit_code == 0, done.output
    [sent] = setup.standin.api.sent
    assert done.stdout.strip() == sent["id"] and sent["text"] == "Your order shipped"


def test_send_refuses_a_bad_number_or_text_before_evolution_and_says_when_it_is_not_connected(setup: Setup) -> None:
    requests = len(setup.standin.requests)
    for number, text, why in (
        ("+5511987654321", "hi", "NUMBER must be a phone number"),
        ("5511987654321", "  ", "TEXT is empty"),
        ("5511987654321", "x" * 5000, "TEXT is longer than 4096 characters"),
    ):
        done = setup.run("send", "acme/shop", "orders", number, text)
        assert done.exit_code == 1 and why in done.stderr and "nothing was sent" in done.stderr
    assert len(setup.standin.requests) == requests
    closed = setup.run("send", "acme/shop", "orders", "5511987654321", "hi")
    assert closed.exit_code == 1 and "Connection Closed" in closed.stderr and "nothing was sent" in closed.stderr
    assert KEY not in closed.output


def test_a_terminal_redraw_erases_the_previous_code() -> None:
    runner = CliRunner()

    @whatsapp_drawing.click.command()
    def draw() -> None:
        screen = whatsapp_drawing._Screen(tty=True)
        screen.draw("one\ntwo")
        screen.draw("three")

    assert runner.invoke(draw).stdout == "one\ntwo\n\x1b[2F\x1b[Jthree\n"
