"""Where a forwarded row may be posted: the parts of a tenant's `webhook_url`, and which addresses are refused. Pure.

A `webhook_url` is tenant text, and the platform posts from inside the host: a URL naming the host itself, the
Docker network's containers (Docker's default address pools are private ranges), a private network or the cloud's
metadata address (link-local) would let a tenant reach what only the host should. So every address the name
resolves to is checked, and the post connects to a checked address, never resolving the name again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: a provider's internal network
NAT64_V6 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address behind the well-known NAT64 prefix


class BadDestination(ValueError):
    """A webhook_url the platform does not post to (its text names no host, or a scheme other than http(s))."""


@dataclass(frozen=True)
class Destination:
    scheme: str  # http or https
    host: str  # as written (IPv6 literals without brackets): the Host header and the TLS server name
    port: int
    target: str  # path and query, as the request line sends them

    @property
    def label(self) -> str:
        """For logs: scheme, host and port only (a path or query may hold the app's own token)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def destination(url: str) -> Destination:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise BadDestination(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadDestination("not an http(s) URL with a host name")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return Destination(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target)


def embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is what the packets reach."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_V6:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, allow_private: bool = False) -> str | None:
    """Why the platform does not post to `address`, or None. `allow_private` (tests, the sandbox) lifts every
    reason but unspecified and multicast, which name no one app."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_v4(address)
        if inner is not None:
            reason = refusal(inner, allow_private)
            return None if reason is None else f"{reason} (inside {address})"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if allow_private:
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_V4:
        return "shared address space"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not a public address"
    return None


def refused(addresses: list[IPAddress], allow_private: bool = False) -> str | None:
    """The first refused address and why (a name is refused when any of its addresses is), or None."""
    if not addresses:
        return "the name resolves to no address"
    for address in addresses:
        reason = refusal(address, allow_private)
        if reason is not None:
            return f"{address} is {reason}"
    return None
