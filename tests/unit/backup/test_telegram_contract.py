"""The Telegram client against the local Bot API contract stand-in: limits, fields, errors, masking."""

from __future__ import annotations

import http.client
import io
import json
from pathlib import Path

import pytest

from devkit.standins.telegram import DOWNLOAD_LIMIT, UPLOAD_LIMIT, TelegramStandin
from nextmavens.backup.pipeline import chunk_name, read_chunks
from nextmavens.backup.settings import ConfigError, read_secret_file
from nextmavens.backup.telegram import RetryPolicy, TelegramClient, TelegramError

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, total_seconds=10, request_timeout=10)


@pytest.fixture
def api(tmp_path: Path):
    with TelegramStandin(tmp_path / "files") as standin:
        yield standin


def client_for(api: TelegramStandin, **kwargs) -> TelegramClient:
    return TelegramClient(api.state.token, api.state.chat_id, api.base_url, retry=FAST, **kwargs)


def raw(api: TelegramStandin, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    port = int(api.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def test_contract_send_get_download_delete(api: TelegramStandin, tmp_path: Path) -> None:
    client = client_for(api)
    document = client.send_document(b"hello" * 1000, "x.part0000", caption="nextmavens backup 1")
    assert document.size == 5000 and document.file_id
    path, size = client.get_file_path(document.file_id)
    assert size == 5000 and path.startswith("documents/")
    assert client.download(document.file_id, tmp_path / "out") == 5000
    import hashlib

    assert client.download_sha256(document.file_id, tmp_path / "out2") == (
        5000,
        hashlib.sha256(b"hello" * 1000).hexdigest(),
    )
    assert (tmp_path / "out").read_bytes() == b"hello" * 1000
    client.delete_message(document.message_id)
    with pytest.raises(TelegramError, match="invalid file_id"):
        client.get_file_path(document.file_id)


def test_contract_upload_over_50_mb_is_refused_by_the_api(api: TelegramStandin) -> None:
    status, body = raw(
        api,
        "POST",
        f"/bot{api.state.token}/sendDocument",
        b"",
        {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(UPLOAD_LIMIT + 1)},
    )
    assert status == 413
    # And the client never even tries.
    with pytest.raises(TelegramError, match="over the upload limit"):
        client_for(api).send_document(memoryview(bytearray(UPLOAD_LIMIT + 1)), "big")


def test_contract_download_over_20_mb_is_refused(api: TelegramStandin, tmp_path: Path) -> None:
    client = client_for(api)
    data = bytearray(DOWNLOAD_LIMIT + 1)
    document = client.send_document(data, "big.bin")  # uploading 20 MB + 1 is allowed...
    with pytest.raises(TelegramError, match="file is too big"):
        client.download(document.file_id, tmp_path / "big")  # ...downloading it is not


def test_contract_multipart_fields_are_required(api: TelegramStandin) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n{api.state.chat_id}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    status, payload = raw(
        api,
        "POST",
        f"/bot{api.state.token}/sendDocument",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 400 and b"no document" in payload


def test_contract_wrong_chat_and_wrong_token(api: TelegramStandin) -> None:
    with pytest.raises(TelegramError, match="chat not found"):
        TelegramClient(api.state.token, "-100999", api.base_url, retry=FAST).send_message("hi")
    with pytest.raises(TelegramError, match="Unauthorized") as caught:
        TelegramClient("999:wrong-token", api.state.chat_id, api.base_url, retry=FAST).send_message("hi")
    assert "wrong-token" not in str(caught.value)


def test_contract_retries_are_bounded_in_count(api: TelegramStandin) -> None:
    api.state.fail_next_uploads = 100
    sleeps: list[float] = []
    client = client_for(api, sleep=sleeps.append)
    with pytest.raises(TelegramError, match="gave up after retries"):
        client.send_document(b"x", "x")
    assert api.state.calls.count("sendDocument") == FAST.attempts
    assert len(sleeps) == FAST.attempts - 1


def test_retries_are_bounded_in_time() -> None:
    """A connection refused forever stops at the total deadline, not after a long sleep."""
    policy = RetryPolicy(attempts=50, base_delay=5, max_delay=5, total_seconds=12, request_timeout=1)
    sleeps: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    client = TelegramClient(
        "1:secret-token-value", "1", "http://127.0.0.1:9", retry=policy, sleep=sleep, clock=lambda: now[0]
    )
    with pytest.raises(TelegramError) as caught:
        client.send_message("x")
    assert sleeps == [5, 5]  # a third wait would pass the 12 s budget
    assert "secret-token-value" not in str(caught.value)


def test_token_never_in_repr_or_logged_errors(api: TelegramStandin) -> None:
    logged: list[str] = []
    client = client_for(api, log=logged.append)
    api.state.fail_next_uploads = 1
    client.send_document(b"x", "x")
    assert logged and all(api.state.token not in line for line in logged)
    assert api.state.token not in repr(client)
    assert client.masked(f"/bot{api.state.token}/getFile") == "/bot***/getFile"


def test_server_description_echoing_the_token_is_masked() -> None:
    client = TelegramClient("1:abc-secret", "1", "http://127.0.0.1:9", retry=FAST)
    error = client._error_from("getMe", 400, json.dumps({"description": "bad /bot1:abc-secret/x"}).encode())
    assert "abc-secret" not in str(error)


def test_read_chunks_splits_exactly() -> None:
    data = bytes(range(256)) * 100  # 25,600 bytes
    chunks = list(read_chunks(io.BufferedReader(io.BytesIO(data)), 10_000))
    assert [len(c) for c in chunks] == [10_000, 10_000, 5_600]
    assert b"".join(chunks) == data
    assert list(read_chunks(io.BufferedReader(io.BytesIO(b"")), 10)) == []
    assert [len(c) for c in read_chunks(io.BufferedReader(io.BytesIO(b"x" * 20)), 10)] == [10, 10]


def test_chunk_name() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert chunk_name("acme/shop", 7, 3, when) == "acme_shop.20261126T120000Z.b7.pgdump.age.part0003"
    assert chunk_name("_platform/control", 8, 0, when).startswith("platform_control.")


def test_secret_files_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("1:abc\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        read_secret_file(secret)
    secret.chmod(0o600)
    assert read_secret_file(secret) == "1:abc"


def test_rate_limit_retry_after_is_honoured_in_full() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=30)
    assert policy.delay(1, retry_after=45) == 45
    assert policy.delay(3) == 4


def test_chunks_of_20_mb_or_more_are_refused(tmp_path: Path) -> None:
    from nextmavens.backup.settings import BackupSettings, TelegramSettings

    telegram = TelegramSettings(tmp_path / "t", "1", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="below 20 MB"):
        BackupSettings(dsn="", recipient="age1x", telegram=telegram, chunk_bytes=20 * 1024 * 1024)
    assert BackupSettings(dsn="", recipient="age1x", telegram=telegram).chunk_bytes == 19_000_000
