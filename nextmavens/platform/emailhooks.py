"""Email's webhooks into the project's database: Resend's delivery reports (`POST /hooks/resend`, Svix-signed) and
the inbound mail worker's messages (`POST /hooks/email/inbound`, HMAC over timestamp and body).

Both are acknowledged (200) only after the row is committed, or when it was stored before (idempotent: the Svix
message id; the worker's delivery id per recipient). A report is filed under the project whose manifest's
`from_domain` sent it; a received message under the project whose `inbound_addresses` lists its recipient. Writes go
through a small pool per project logged in as its owner role (hookreceiver.OwnerPools). Every refusal of a
signature answers the same 401; the log line alone says why, and names no secret or signature.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool

from nextmavens.email import inboundauth, svix
from nextmavens.email.store import inbound_attachment, insert_inbound, record_event, set_inbound_attachment
from nextmavens.files import SecretFileError, read_secret_file
from nextmavens.media.attachments import MISMATCH, decoded, offload_attachments, upload_attachment
from nextmavens.media.cloudinary import CloudinaryClient
from nextmavens.platform.emailsend import EmailError, Mailer, MailTarget
from nextmavens.platform.hookreceiver import TRANSIENT, OwnerPools

log = logging.getLogger("nextmavens.platform.hooks")

MAX_TEXT = 1_000_000  # characters of a received message's text or html part kept
MAX_HEADERS = 200
MAX_ATTACHMENTS = 50
# One attachment the worker posts on its own (base64 in JSON): the worker takes messages up to 10 MiB.
ATTACHMENT_PATH = "/hooks/email/inbound/attachment"
ATTACHMENT_MAX_BODY_BYTES = 14 * 1024 * 1024
_ADDRESS_IN = re.compile(r"<?([^<>\s]+@[^<>\s]+?)>?\s*$")


@dataclass(frozen=True)
class HookAnswer:
    status: int  # 200, 401, 404 (no project for the recipient), 422, 503
    stored: bool = False
    retry_after_s: int | None = None
    configured: bool = True  # False: the service has no secret for these webhooks (404: the receiver is absent)


REFUSED = HookAnswer(401)
UNAVAILABLE = HookAnswer(503, retry_after_s=5)
NOT_CONFIGURED = HookAnswer(404, configured=False)


def address_of(value: object) -> str | None:
    """The lowercase address of `a@b` or `Name <a@b>`, or None."""
    if not isinstance(value, str):
        return None
    match = _ADDRESS_IN.search(value.strip())
    return match.group(1).lower() if match else None


def parse_object(raw: bytes) -> dict[str, Any] | None:
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class EmailHooks:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        settings = mailer.service.settings
        self.pools = OwnerPools(settings.hook_pool_size, settings.pool_timeout_s)
        self._secrets: dict[Path, str] = {}
        self._cloudinary: CloudinaryClient | None = None

    def cloudinary(self) -> CloudinaryClient | None:
        """Where attachments go; None without Cloudinary settings or with an unreadable key file (logged)."""
        settings = self.mailer.service.settings
        if self._cloudinary is None and settings.cloudinary_cloud and settings.cloudinary_key_file is not None:
            secret = self._secret(settings.cloudinary_key_file, "Cloudinary's key file")
            api_key, _, api_secret = (secret or "").partition(":")
            if api_key and api_secret:
                self._cloudinary = CloudinaryClient(
                    settings.cloudinary_cloud, api_key, api_secret, settings.cloudinary_url
                )
        return self._cloudinary

    def _secret(self, path: Path, what: str) -> str | None:
        if path not in self._secrets:
            try:
                self._secrets[path] = read_secret_file(path, what)
            except SecretFileError as exc:
                log.error("cannot read %s: %s", what, exc)
                return None
        return self._secrets[path]

    def _project_for(self, kind: str, address: str) -> tuple[str, str] | None:
        """(org, ref) of the project whose manifest sends from (kind "from") or receives at (kind "to") `address`."""
        manifests = self.mailer.service.manifests.current()
        if manifests is None:
            return None
        domain = address.rpartition("@")[2]
        for project in manifests.projects:
            email = project.manifest.email
            if email is None:
                continue
            sends = kind == "from" and email.from_domain == domain
            if sends or (kind == "to" and address in email.inbound_addresses):
                return project.org, project.ref
        return None

    def _target(self, kind: str, address: str) -> MailTarget | None:
        found = self._project_for(kind, address)
        if found is None:
            return None
        try:
            return self.mailer.target(*found)
        except EmailError as exc:
            log.warning("email webhook for %s/%s not stored: %s", *found, exc.code)
            return None

    async def resend(self, headers: dict[str, str], raw: bytes) -> HookAnswer:
        path = self.mailer.service.settings.resend_webhook_secret_file
        if path is None:
            return NOT_CONFIGURED
        secret = self._secret(path, "Resend's webhook secret")
        if secret is None:
            return UNAVAILABLE
        try:
            key = svix.signing_key(secret)
        except svix.SecretError as exc:
            log.error("Resend's webhook secret is unusable: %s", exc)
            return UNAVAILABLE
        problem = svix.signature_problem(headers, raw, key, time.time())
        if problem is not None:
            log.warning("resend webhook refused: %s", problem)
            return REFUSED
        body = parse_object(raw)
        data = body.get("data") if body else None
        if body is None or not isinstance(body.get("type"), str) or not isinstance(data, dict):
            log.warning("resend webhook not storable: not an object with type and data; answered 422")
            return HookAnswer(422)
        sender = address_of(data.get("from"))
        target = await run_in_threadpool(self._target, "from", sender) if sender else None
        if target is None:
            # a domain no project sends from (any more): acknowledged, so Resend stops sending it
            log.warning("resend webhook %s for no project's domain: acknowledged, not stored", headers["svix-id"][:64])
            return HookAnswer(200, stored=False)
        provider_id = data.get("email_id") if isinstance(data.get("email_id"), str) else None
        return await self._write(
            target, lambda conn: record_event(conn, headers["svix-id"], body["type"][:100], provider_id, body)
        )

    def early_refusal(self, header: str | None, what: str) -> HookAnswer | None:
        """The answer for a worker's request refused before its body is read (up to 14 MiB for an attachment):
        404 when unconfigured, 401 for a missing, malformed or stale signature header; else None."""
        if self.mailer.service.settings.inbound_email_secret_file is None:
            return NOT_CONFIGURED
        problem = inboundauth.header_problem(header, time.time())
        if problem is not None:
            log.warning("%s refused before its body was read: %s", what, problem)
            return REFUSED
        return None

    def _worker_refusal(self, header: str | None, raw: bytes, what: str) -> HookAnswer | None:
        """None when the inbound mail worker signed `raw`; else the answer (404 unconfigured, 503, 401)."""
        path = self.mailer.service.settings.inbound_email_secret_file
        if path is None:
            return NOT_CONFIGURED
        secret = self._secret(path, "the inbound mail secret")
        if secret is None:
            return UNAVAILABLE
        problem = inboundauth.signature_problem(header, raw, secret, time.time())
        if problem is not None:
            log.warning("%s refused: %s", what, problem)
            return REFUSED
        return None

    async def inbound(self, header: str | None, raw: bytes) -> HookAnswer:
        refused = self._worker_refusal(header, raw, "inbound email")
        if refused is not None:
            return refused
        body = parse_object(raw)
        row = inbound_row(body) if body is not None else None
        if row is None:
            log.warning("inbound email not storable: missing delivery_id, to or from; answered 422")
            return HookAnswer(422)
        target = await run_in_threadpool(self._target, "to", row["to_address"])
        if target is None:
            log.warning("inbound email for an address no project lists: answered 404")
            return HookAnswer(404)
        contents = [a.get("content_base64") for a in (body or {}).get("attachments") or [] if isinstance(a, dict)]
        client = self.cloudinary()
        if client is not None and any(isinstance(c, str) for c in contents):
            row["attachments"] = await run_in_threadpool(
                offload_attachments, client, target.ref, row["delivery_id"], row["attachments"], contents
            )
        return await self._write(target, lambda conn: insert_inbound(conn, row))

    async def attachment(self, header: str | None, raw: bytes) -> HookAnswer:
        """One attachment of a stored message, too large to travel with it: `{delivery_id, to, index,
        content_base64}`, signed as the messages are. Uploaded only when the message is stored, the attachment is
        described there without a URL yet, and the content matches the described sha256; then its URL is recorded.
        200 (stored false when it was before), 404 no such message or attachment, 422 a content that does not match
        (the worker's retry cannot fix it) or a refused upload, 401, 503 as for messages."""
        refused = self._worker_refusal(header, raw, "inbound attachment")
        if refused is not None:
            return refused
        body = parse_object(raw) or {}
        delivered, given = delivery_of(body), body.get("index")
        index = given if isinstance(given, int) and not isinstance(given, bool) and 0 <= given < MAX_ATTACHMENTS else -1
        if delivered is None or index < 0:
            log.warning("inbound attachment not storable: missing delivery_id, to or index; answered 422")
            return HookAnswer(422)
        delivery_id, to = delivered
        target = await run_in_threadpool(self._target, "to", to)
        if target is None:
            return HookAnswer(404)
        item, refused = await self._in_project(
            target, lambda conn: inbound_attachment(conn, to, delivery_id, index), "inbound attachment", "read"
        )
        if refused is not None:
            return refused
        if item is None:
            return HookAnswer(404)
        if "url" in item:
            return HookAnswer(200, stored=False)
        client = self.cloudinary()
        if client is None:
            log.warning("inbound attachment for %s: no Cloudinary settings, kept described only", target.ref)
            return HookAnswer(200, stored=False)
        content = decoded(body.get("content_base64"))
        if content is None or (isinstance(item.get("size"), int) and len(content) != item["size"]):
            log.warning("inbound attachment for %s does not match its description: answered 422", target.ref)
            return HookAnswer(422)
        uploaded = await run_in_threadpool(upload_attachment, client, target.ref, delivery_id, index, item, content)
        if "url" not in uploaded:
            log.warning("inbound attachment for %s not offloaded: %s", target.ref, uploaded.get("offload_error"))
            return HookAnswer(422) if uploaded.get("offload_error") == MISMATCH else UNAVAILABLE
        return await self._write(
            target, lambda conn: set_inbound_attachment(conn, to, delivery_id, index, uploaded)
        )

    async def _write(self, target: MailTarget, write: Any) -> HookAnswer:
        stored, refused = await self._in_project(target, write, "email webhook", "stored")
        return refused or HookAnswer(200, stored=stored)

    async def _in_project(self, target: MailTarget, work: Any, what: str, done: str) -> tuple[Any, HookAnswer | None]:
        """(what `work(conn)` returned, None) on the project's pool as its owner; else (None, the answer): 503 for a
        database that is unavailable (its broken connections checked) or lacks the tables, 422 for data it refuses."""
        pool = await self.pools.get(target.ref, target.owner_dsn)
        try:
            async with pool.connection() as conn:
                return await work(conn), None
        except TRANSIENT as exc:
            log.warning("%s for %s not %s (%s): answered 503", what, target.ref, done, type(exc).__name__)
            if not isinstance(exc, PoolTimeout):
                await pool.check()
            return None, UNAVAILABLE
        except psycopg.ProgrammingError as exc:
            kind = type(exc).__name__
            log.error("%s for %s not %s (%s): answered 503; has apply run?", what, target.ref, done, kind)
            return None, UNAVAILABLE
        except psycopg.DataError as exc:
            log.warning("%s for %s not %s (%s): answered 422", what, target.ref, done, type(exc).__name__)
            return None, HookAnswer(422)

    async def close(self) -> None:
        await self.pools.close()


def _text(value: object, limit: int = MAX_TEXT) -> str | None:
    return value[:limit].replace("\x00", "") if isinstance(value, str) else None


def delivery_of(body: dict[str, Any]) -> tuple[str, str] | None:
    """(delivery_id, recipient address) naming one received message (the worker's message and its attachments'
    posts alike), or None when either is missing or malformed."""
    delivery_id, to = body.get("delivery_id"), address_of(body.get("to"))
    if not isinstance(delivery_id, str) or not 1 <= len(delivery_id) <= 200 or to is None:
        return None
    return delivery_id, to


def inbound_row(body: dict[str, Any]) -> dict[str, Any] | None:
    """The email.inbound row of the worker's message, or None when it lacks delivery_id, to or from. Attachments
    keep their name, type, size and checksum; their content is not stored in the database."""
    delivered, sender = delivery_of(body), address_of(body.get("from"))
    if delivered is None or sender is None:
        return None
    delivery_id, to = delivered
    headers = [
        {"key": _text(h.get("key"), 200), "value": _text(h.get("value"), 4000)}
        for h in (body.get("headers") or [])[:MAX_HEADERS]
        if isinstance(h, dict)
    ]
    attachments = [
        {
            "filename": _text(a.get("filename"), 255),
            "mime_type": _text(a.get("mime_type"), 255),
            "size": a.get("size") if isinstance(a.get("size"), int) else None,
            "sha256": _text(a.get("sha256"), 64),
        }
        for a in (body.get("attachments") or [])[:MAX_ATTACHMENTS]
        if isinstance(a, dict)
    ]
    return {
        "delivery_id": delivery_id,
        "to_address": to,
        "from_address": sender,
        "subject": _text(body.get("subject"), 2000),
        "message_id": _text(body.get("message_id"), 1000),
        "text": _text(body.get("text")),
        "html": _text(body.get("html")),
        "headers": headers,
        "attachments": attachments,
    }
