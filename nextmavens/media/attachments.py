"""Received mail's attachments to Cloudinary: each one the inbound mail worker sent the content of (base64) is
uploaded under `nextmavens/<ref>/inbound/<delivery id>/`, and its description gets the asset's `url` only when
Cloudinary's answer has the same size and MD5 and the content matches the worker's sha256; otherwise it keeps
its description alone, with `offload_error`. Blocking (HTTP); the content itself is never stored in the database.
The worker sends what does not fit in the message's own post (over 512 KiB in all) afterwards, one attachment per
signed post (platform/emailhooks.py `attachment`), through upload_attachment."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from nextmavens.media.cloudinary import CloudinaryClient, CloudinaryError
from nextmavens.media.offload import resource_type

_NAME = re.compile(r"[^A-Za-z0-9_.-]")
MISMATCH = "the content does not match its sha256"  # the sender's fault: sending it again cannot help


def upload_attachment(
    client: CloudinaryClient, ref: str, delivery_id: str, index: int, item: dict[str, Any], content: bytes | None
) -> dict[str, Any]:
    """`item` (a stored description) with the asset's `url` when `content` matches its sha256 and Cloudinary's answer
    has the same size and MD5; else with `offload_error`."""
    item = dict(item)
    if content is None or hashlib.sha256(content).hexdigest() != item.get("sha256"):
        item["offload_error"] = MISMATCH
        return item
    name = _NAME.sub("_", str(item.get("filename") or f"attachment-{index}"))[:100]
    kind = resource_type(name)
    public_id = f"{index}-{name.rsplit('.', 1)[0] if kind != 'raw' else name}"
    folder = f"nextmavens/{ref}/inbound/{delivery_id[:64]}"
    try:
        uploaded = client.upload(content, public_id, folder, kind, name)
    except CloudinaryError as exc:
        item["offload_error"] = str(exc)[:300]
        return item
    md5 = hashlib.md5(content).hexdigest()  # noqa: S324 - Cloudinary's etag is an MD5
    if uploaded.bytes == len(content) and uploaded.etag == md5:
        item.pop("offload_error", None)
        item["url"] = uploaded.secure_url
    else:
        item["offload_error"] = "Cloudinary holds other bytes (size or checksum differ)"
    return item


def decoded(encoded: object) -> bytes | None:
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def offload_attachments(
    client: CloudinaryClient, ref: str, delivery_id: str, described: list[dict[str, Any]], contents: Sequence[object]
) -> list[dict[str, Any]]:
    """Each description whose content came along (base64), uploaded; the others as they are."""
    out = []
    for index, item in enumerate(described):
        encoded = contents[index] if index < len(contents) else None
        if isinstance(encoded, str):
            out.append(upload_attachment(client, ref, delivery_id, index, item, decoded(encoded)))
        else:
            out.append(dict(item))
    return out
