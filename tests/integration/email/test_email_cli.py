"""`nextmavens email send|templates` through the real service and the Resend STAND-IN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nextmavens.cli import main
from tests.integration.email.conftest import EmailStage


@pytest.fixture
def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, email_stage: EmailStage) -> EmailStage:
    monkeypatch.setenv("NEXTMAVENS_URL", email_stage.url)
    monkeypatch.setenv("NEXTMAVENS_TOKEN", email_stage.platform.issue("dev@acme.test")[1])
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(tmp_path / "config"))
    return email_stage


def test_email_send_with_a_template_and_again_with_the_same_key(logged_in: EmailStage) -> None:
    args = ["email", "send", "acme/shop", "--to", "ann@x.example", "--to", "bob@x.example", "--subject", "Hi"]
    args += ["--template", "welcome", "--data", '{"name": "Ann", "shop": "Acme"}']
    args += ["--idempotency-key", "cli-1", "--json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    answer = json.loads(first.stdout)
    assert answer["status"] == "sent" and answer["replayed"] is False
    [sent] = logged_in.resend.state.sent_with_key("shop/cli-1")
    assert sent.body["to"] == ["ann@x.example", "bob@x.example"]
    assert sent.body["text"] == "Hello Ann, welcome to Acme.\n"
    again = CliRunner().invoke(main, args[:-1])
    assert again.exit_code == 0 and "already sent" in again.stdout
    assert len(logged_in.resend.state.sent_with_key("shop/cli-1")) == 1


def test_email_send_refusals_exit_1_with_the_services_reason(logged_in: EmailStage, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["email", "send", "acme/crm", "--to", "a@x.example", "--subject", "s",
                                       "--text-file", str(_write(tmp_path / "t.txt", "hello"))])
    assert result.exit_code == 1 and "declares no email" in result.output
    bad = CliRunner().invoke(main, ["email", "send", "acme/shop", "--to", "a@x.example", "--subject", "s",
                                    "--template", "welcome", "--data", "[1]"])
    assert bad.exit_code == 1 and "JSON object" in bad.output


def test_email_templates(logged_in: EmailStage) -> None:
    result = CliRunner().invoke(main, ["email", "templates", "acme/shop"])
    assert result.exit_code == 0 and "welcome  (html, text)" in result.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
