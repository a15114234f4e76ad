"""Checks of plain values that manifests, group data and the edge's settings share: one rule for each.

Pure: a value in, the value back or a ValueError that says what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# Python's `$` also matches before a trailing newline: fullmatch only.
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check_domain(value: str) -> str:
    """A fully qualified, lowercase, ASCII host name: no wildcard, no IP address, no trailing dot."""
    if value != value.lower():
        raise ValueError(f"domain {value!r} must be lowercase")
    if "*" in value:
        raise ValueError(f"domain {value!r}: wildcards are not allowed")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"domain {value!r} is an IP address; a domain must be a host name")
    if len(value) > 253:
        raise ValueError(f"domain {value!r} is longer than 253 characters")
    labels = value.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"domain {value!r} is not a valid host name (lowercase ASCII labels of letters, digits and "
            "hyphens, at least two labels)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"domain {value!r} has a numeric top-level label")
    return value


def reject_repeats(values: Iterable[str], what: str) -> None:
    """Refuse a list that names something twice (`what` says what the items are)."""
    seen: set[str] = set()
    for item in values:
        if item in seen:
            raise ValueError(f"{what} {item!r} is listed twice")
        seen.add(item)
