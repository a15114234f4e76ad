"""Inbound mail end to end: the Cloudflare Email Worker (workers/inbound-email, postal-mime) running in miniflare
(workerd, locally) posts each message to the real service on loopback, which verifies its signature, maps the
recipient to the project whose manifest lists it, and stores it in that project's email.inbound. Also the receiver
alone: forged, stale and replayed posts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.email.conftest import INBOUND_SECRET, EmailStage
from tests.support.repo import REPO

WORKER = REPO / "workers" / "inbound-email"
MESSAGE = (
    "From: Ann <ann@x.example>\r\nTo: help@shop.example\r\nSubject: =?utf-8?q?Caf=C3=A9_help?=\r\n"
    "Message-ID: <{id}@x.example>\r\nDate: Wed, 02 Dec 2026 14:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
    "Hi, I need help.\r\n--b1\r\nContent-Type: text/plain; name=note.txt\r\nContent-Transfer-Encoding: base64\r\n"
    'Content-Disposition: attachment; filename="note.txt"\r\n\r\nYXR0YWNoZWQ=\r\n--b1--\r\n'
)


def deliver(
    stage: EmailStage, tmp_path: Path, sender: str, to: str, message_id: str, raw_message: bytes | None = None
) -> dict[str, object]:
    node = shutil.which("node")
    assert node is not None, "node is missing: scripts/bootstrap installs it"
    installed = (WORKER / "node_modules" / "miniflare").is_dir()
    assert installed, "run scripts/bootstrap (npm install in workers/inbound-email)"
    raw = tmp_path / f"{message_id}.eml"
    raw.write_bytes(raw_message if raw_message is not None else MESSAGE.format(id=message_id).encode())
    env = {**os.environ, "PLATFORM_URL": stage.url, "INBOUND_SECRET": INBOUND_SECRET}
    argv = [node, "test/deliver.mjs", sender, to, str(raw)]
    done = subprocess.run(argv, cwd=WORKER, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def inbound(stage: EmailStage, dbname: str = "shop") -> list[tuple[object, ...]]:
    return stage.stage.sql(
        "SELECT to_address, from_address, subject, message_id, text, attachments FROM email.inbound ORDER BY id",
        dbname=dbname,
    )


def test_the_worker_in_miniflare_stores_a_message_in_the_projects_table(
    email_stage: EmailStage, tmp_path: Path
) -> None:
    answer = deliver(email_stage, tmp_path, "ann@x.example", "help@shop.example", "w1")
    assert answer["status"] == 200, answer
    rows = [r for r in inbound(email_stage) if r[3] == "<w1@x.example>"]
    assert len(rows) == 1
    to, sender, subject, _, text, attachments = rows[0]
    assert (to, sender, subject, text) == ("help@shop.example", "ann@x.example", "Café help", "Hi, I need help.\n")
    digest = hashlib.sha256(b"attached").hexdigest()
    [attachment] = attachments  # type: ignore[misc]
    url = attachment.pop("url")
    assert attachment == {"filename": "note.txt", "mime_type": "text/plain", "size": 8, "sha256": digest}
    # offloaded to Cloudinary (the stand-in) under the project's folder; its content is not in the database
    [(key, asset)] = [(k, a) for k, a in email_stage.cloudinary.state.assets.items() if a.public_id in url]
    assert key[1].startswith("nextmavens/shop/inbound/") and asset.content == b"attached"
    # the same message delivered again (Cloudflare retries) is stored once
    assert deliver(email_stage, tmp_path, "ann@x.example", "help@shop.example", "w1")["status"] == 200
    assert len([r for r in inbound(email_stage) if r[3] == "<w1@x.example>"]) == 1


def test_mail_to_an_address_no_project_lists_is_rejected_by_the_worker(
    email_stage: EmailStage, tmp_path: Path
) -> None:
    answer = deliver(email_stage, tmp_path, "ann@x.example", "nobody@shop.example", "w2")
    assert answer["status"] != 200 and "no such recipient" in str(answer["body"])
    assert not [r for r in inbound(email_stage) if r[3] == "<w2@x.example>"]


def test_each_address_lands_in_its_own_project(email_stage: EmailStage, tmp_path: Path) -> None:
    assert deliver(email_stage, tmp_path, "ann@x.example", "hi@web.example", "w3")["status"] == 200
    assert [r[0] for r in inbound(email_stage, "web") if r[3] == "<w3@x.example>"] == ["hi@web.example"]
    assert not [r for r in inbound(email_stage) if r[3] == "<w3@x.example>"]


@pytest.fixture(scope="module")
def client(email_stage: EmailStage) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=email_stage.url, timeout=60) as session:
        yield session


def signed(body: bytes, secret: str = INBOUND_SECRET, at: float | None = None) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-nextmavens-signature": f"t={stamp},v1={digest}", "content-type": "application/json"}


def test_forged_stale_and_bad_posts_are_refused(email_stage: EmailStage, client: httpx.Client) -> None:
    body = json.dumps({"delivery_id": "d-forged", "to": "help@shop.example", "from": "x@y.example"}).encode()
    for headers in (signed(body, "another-secret"), signed(body, at=time.time() - 600), {}, signed(body + b" ")):
        answer = client.post("/hooks/email/inbound", content=body, headers=headers)
        assert answer.status_code == 401, headers
    altered = client.post("/hooks/email/inbound", content=body.replace(b"help@", b"orders@"), headers=signed(body))
    assert altered.status_code == 401
    assert client.post("/hooks/email/inbound", content=b"[1]", headers=signed(b"[1]")).status_code == 422
    count = "SELECT count(*) FROM email.inbound WHERE delivery_id = 'd-forged'"
    assert email_stage.stage.sql(count, dbname="shop") == [(0,)]
    good = client.post("/hooks/email/inbound", content=body, headers=signed(body))
    assert good.json() == {"stored": True}
    assert client.post("/hooks/email/inbound", content=body, headers=signed(body)).json() == {"stored": False}


def with_attachments(message_id: str, files: list[tuple[str, str, bytes]]) -> bytes:
    """A multipart message from ann@x.example to help@shop.example carrying `files` (name, type, bytes), base64."""
    parts = [
        "From: Ann <ann@x.example>\r\nTo: help@shop.example\r\nSubject: files\r\n"
        f"Message-ID: <{message_id}@x.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
    ]
    for name, kind, content in files:
        encoded = base64.b64encode(content).decode()
        lines = "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
        parts.append(
            f"--b1\r\nContent-Type: {kind}; name={name}\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n{lines}\r\n'
        )
    return ("".join(parts) + "--b1--\r\n").encode()


def test_attachments_beyond_the_messages_budget_reach_cloudinary_in_their_own_posts(
    email_stage: EmailStage, tmp_path: Path
) -> None:
    """A 560 KiB attachment does not fit in the message's post (512 KiB in all): the worker posts it on its own once
    the message is stored, and the service uploads it; the small and the 100 KiB ones travel with the message.
    (miniflare takes messages up to 1 MiB locally; Cloudflare up to 25 MiB, the worker up to 10 MiB.)"""
    small, big, mid = b"attached", os.urandom(560 * 1024), os.urandom(100 * 1024)
    files = [("note.txt", "text/plain", small), ("scan.pdf", "application/pdf", big), ("m.zip", "application/zip", mid)]
    raw = with_attachments("w9", files)
    answer = deliver(email_stage, tmp_path, "ann@x.example", "help@shop.example", "w9", raw)
    assert answer["status"] == 200, answer
    [(attachments,)] = email_stage.stage.sql(
        "SELECT attachments FROM email.inbound WHERE message_id = '<w9@x.example>'", dbname="shop"
    )
    assert [a["sha256"] for a in attachments] == [hashlib.sha256(c).hexdigest() for c in (small, big, mid)]
    assert all("url" in a and "offload_error" not in a for a in attachments), attachments
    held = {a.public_id: a.content for a in email_stage.cloudinary.state.assets.values()}
    for attachment, content in zip(attachments, (small, big, mid), strict=True):
        [public_id] = [p for p in held if attachment["url"].endswith(p) or f"/{p}" in attachment["url"]]
        assert held[public_id] == content and "nextmavens/shop/inbound/" in public_id
    # Cloudflare delivers it again: one row, the same URLs
    assert deliver(email_stage, tmp_path, "ann@x.example", "help@shop.example", "w9", raw)["status"] == 200
    again = email_stage.stage.sql(
        "SELECT attachments FROM email.inbound WHERE message_id = '<w9@x.example>'", dbname="shop"
    )
    assert again == [(attachments,)]


def test_attachment_posts_are_signed_and_must_match_their_description(
    email_stage: EmailStage, client: httpx.Client, tmp_path: Path
) -> None:
    content = os.urandom(800 * 1024)
    stored = {"delivery_id": "d-att", "to": "orders@shop.example", "from": "x@y.example", "attachments": [
        {"filename": "a.bin", "mime_type": "application/zip", "size": len(content),
         "sha256": hashlib.sha256(content).hexdigest()},
    ]}  # fmt: skip
    body = json.dumps(stored).encode()
    assert client.post("/hooks/email/inbound", content=body, headers=signed(body)).json() == {"stored": True}

    def post(payload: dict[str, object], secret: str = INBOUND_SECRET) -> httpx.Response:
        raw = json.dumps(payload).encode()
        return client.post("/hooks/email/inbound/attachment", content=raw, headers=signed(raw, secret))

    good = {"delivery_id": "d-att", "to": "orders@shop.example", "index": 0,
            "content_base64": base64.b64encode(content).decode()}  # fmt: skip
    assert post(good, "another-secret").status_code == 401
    assert post({**good, "content_base64": base64.b64encode(content[:-1] + b"x").decode()}).status_code == 422
    assert post({**good, "index": 1}).status_code == 404
    # a post naming no message (delivery_id, to) or no attachment index of it cannot be stored
    for bad in ({"delivery_id": ""}, {"delivery_id": None}, {"to": "not an address"}, {"index": True}, {"index": -1}):
        assert post({**good, **bad}).status_code == 422, bad
    assert post({**good, "delivery_id": "d-none"}).status_code == 404
    assert post({**good, "to": "nobody@shop.example"}).status_code == 404
    query = "SELECT attachments -> 0 FROM email.inbound WHERE delivery_id = 'd-att'"
    [(before,)] = email_stage.stage.sql(query, dbname="shop")
    assert "url" not in before  # nothing refused was recorded
    first = post(good)
    assert first.status_code == 200 and first.json() == {"stored": True}
    assert post(good).json() == {"stored": False}  # once
    [(after,)] = email_stage.stage.sql(query, dbname="shop")
    asset = [a for a in email_stage.cloudinary.state.assets.values() if after["url"].endswith(a.public_id)
             or f"/{a.public_id}" in after["url"]]  # fmt: skip
    assert [a.content for a in asset] == [content]
    # the message's own post stays small; an attachment's may be larger than the webhook limit
    assert len(json.dumps(good)) > 1024 * 1024


def answer_to_headers_alone(url: str, headers: dict[str, str]) -> int:
    """The status the service answers to a POST of an attachment whose headers announce a body that never comes:
    only an answer given before reading the body arrives (otherwise the service waits for it until our timeout)."""
    parsed = httpx.URL(url)
    lines = ["POST /hooks/email/inbound/attachment HTTP/1.1", f"Host: {parsed.host}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parsed.host, parsed.port or 80), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]  # a timeout here: the body was being waited for
    return int(status_line.split()[1])


def test_an_attachment_post_is_refused_before_its_body_is_read(email_stage: EmailStage) -> None:
    """A missing, malformed or stale signature header, or a Content-Length over the attachment limit, is answered
    without reading the (up to 14 MiB) body."""
    length = {"Content-Length": str(14 * 1024 * 1024)}
    stale = signed(b"{}", at=time.time() - 600)["x-nextmavens-signature"]
    for bad in ({}, {"x-nextmavens-signature": "t=1,v1=zz"}, {"x-nextmavens-signature": "garbage"},
                {"x-nextmavens-signature": stale}):  # fmt: skip
        assert answer_to_headers_alone(email_stage.url, {**length, **bad}) == 401, bad
    too_long = {"Content-Length": str(14 * 1024 * 1024 + 1), **signed(b"{}")}
    assert answer_to_headers_alone(email_stage.url, too_long) == 413
