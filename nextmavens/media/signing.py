"""Cloudinary's request signature, as its "Generating authentication signatures" page specifies. Pure.

Every parameter of the request but `file`, `cloud_name`, `resource_type`, `api_key` (and the signature itself),
`timestamp` included, sorted by name, written `name=value` and joined with `&` (a list's values joined with
commas); the API secret appended; the hex SHA-1 (or SHA-256) digest of that string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

UNSIGNED = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature", "signature_algorithm"})


def string_to_sign(params: Mapping[str, object]) -> str:
    parts = []
    for name in sorted(params):
        value = params[name]
        if name in UNSIGNED or value is None or value == "":
            continue
        listed = isinstance(value, Sequence) and not isinstance(value, str)
        text = ",".join(str(v) for v in value) if listed else str(value)  # type: ignore[attr-defined]
        parts.append(f"{name}={text}")
    return "&".join(parts)


def sign(params: Mapping[str, object], api_secret: str, algorithm: str = "sha1") -> str:
    if algorithm not in ("sha1", "sha256"):
        raise ValueError("Cloudinary signs with sha1 or sha256")
    return hashlib.new(algorithm, (string_to_sign(params) + api_secret).encode()).hexdigest()
