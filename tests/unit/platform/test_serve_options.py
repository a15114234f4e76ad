"""`platform serve` hands its forwarding option to the service: off unless the flag or its variable says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nextmavens.cli import main
from nextmavens.platform.service import ServiceSettings


@pytest.mark.parametrize(
    ("args", "env", "allowed"),
    [
        ([], {}, False),
        (["--forward-allow-private"], {}, True),
        ([], {"NEXTMAVENS_PLATFORM_FORWARD_ALLOW_PRIVATE": "1"}, True),
        ([], {"NEXTMAVENS_PLATFORM_FORWARD_ALLOW_PRIVATE": "0"}, False),
    ],
)
def test_forwarding_to_private_addresses_is_off_unless_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], env: dict[str, str], allowed: bool
) -> None:
    seen: list[ServiceSettings] = []

    def serve(settings: ServiceSettings, host: str, port: int) -> bool:
        seen.append(settings)
        return True

    monkeypatch.setattr("nextmavens.platform.server.serve", serve)
    result = CliRunner().invoke(
        main,
        ["platform", "serve", "--dsn", "host=127.0.0.1 dbname=postgres", "--master-key", str(tmp_path / "k"), *args],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert [s.forward_allow_private for s in seen] == [allowed]
