"""Which login a command uses, and how the stored one is written."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nextmavens.remote import credentials
from nextmavens.remote.api import ApiClient, RemoteError, error_of, role_needed


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("NEXTMAVENS_URL", "NEXTMAVENS_TOKEN", "NEXTMAVENS_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEXTMAVENS_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_the_environment_pair_wins_and_the_dsn_keeps_the_host_side(monkeypatch: pytest.MonkeyPatch) -> None:
    assert credentials.resolve_login() is None and not credentials.uses_api()
    credentials.store_login("https://api.a.example", "nmp_stored")
    assert credentials.resolve_login() == credentials.Login(
        "https://api.a.example", "nmp_stored", str(credentials.login_path())
    )
    assert credentials.uses_api()
    monkeypatch.setenv("NEXTMAVENS_URL", "https://api.b.example")
    with pytest.raises(credentials.LoginError, match="NEXTMAVENS_TOKEN is not set"):
        credentials.resolve_login()
    monkeypatch.setenv("NEXTMAVENS_TOKEN", "nmp_env")
    login = credentials.resolve_login()
    assert login == credentials.Login("https://api.b.example", "nmp_env", "environment")
    assert "nmp_env" not in repr(login)
    monkeypatch.setenv("NEXTMAVENS_DSN", "postgresql:///nextmavens")
    assert not credentials.uses_api()


def test_the_stored_login_is_private_from_its_first_byte(clean: Path) -> None:
    path = credentials.store_login("https://api.a.example", "nmp_one")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(clean.stat().st_mode) == 0o700
    credentials.store_login("https://api.a.example", "nmp_two")  # replaced whole, still 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "nmp_two" in path.read_text()
    assert [p.name for p in clean.iterdir()] == ["login.json"]
    path.write_text("{not json")
    with pytest.raises(credentials.LoginError, match="run `nextmavens login`"):
        credentials.resolve_login()
    assert credentials.forget_login() and not credentials.forget_login()


def test_errors_carry_the_service_code_and_never_the_token() -> None:
    assert error_of(b'{"error": {"code": "busy", "message": "try later"}}', 409) == ("busy", "try later")
    assert error_of(b"<html>Bad gateway</html>", 502)[0] == "http_502"
    assert "admin role" in role_needed("your role or token does not allow projects.create here")
    assert "owner role" in role_needed("your role or token does not allow members.manage here")
    with pytest.raises(RemoteError, match="not an http"):
        ApiClient("ftp://x", "nmp_secret")
    with pytest.raises(RemoteError, match="use https"):  # a token never crosses the network in clear
        ApiClient("http://platform.example.com", "nmp_secret")
    with pytest.raises(RemoteError, match="characters no access token has") as caught:
        ApiClient("https://platform.example.com", "nmp_a\r\nX-Injected: 1")
    assert "nmp_a" not in str(caught.value)
    assert "nmp_secret" not in repr(ApiClient("https://api.a.example", "nmp_secret"))
