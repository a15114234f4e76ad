"""A small DNS client (A, AAAA, CNAME over UDP, RFC 1035) for `nextmavens domains`: what a name resolves to,
including the CNAME it goes through, which the system's resolver does not say. Asks the first nameserver of
/etc/resolv.conf, or NEXTMAVENS_DNS_SERVER (host[:port]; tests: pebble's DNS test server). Parsing is pure."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

A, CNAME, AAAA = 1, 5, 28
TYPE_NAMES = {A: "A", CNAME: "CNAME", AAAA: "AAAA"}


@dataclass(frozen=True)
class Record:
    name: str
    type: str  # A | AAAA | CNAME
    value: str


def encode_query(query_id: int, name: str, qtype: int) -> bytes:
    labels = [label.encode("idna") for label in name.rstrip(".").split(".")]
    if any(not 0 < len(label) < 64 for label in labels):
        raise ValueError(f"{name!r} is not a domain name")
    question = b"".join(bytes([len(label)]) + label for label in labels) + b"\0" + struct.pack(">HH", qtype, 1)
    return struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question  # recursion desired


def _name(message: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name at `offset` -> (name, offset after it)."""
    labels: list[str] = []
    end = None
    for _ in range(128):  # bounded: a pointer loop in a bad answer ends here
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), (end if end is not None else offset + 1)
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise ValueError("DNS answer: name too long")


def decode_answer(message: bytes, query_id: int) -> tuple[int, list[Record]]:
    """(rcode, answer records of the types above)."""
    if len(message) < 12:
        raise ValueError("DNS answer too short")
    ident, flags, questions, answers, _, _ = struct.unpack(">HHHHHH", message[:12])
    if ident != query_id:
        raise ValueError("DNS answer to another query")
    offset = 12
    for _ in range(questions):
        _, offset = _name(message, offset)
        offset += 4
    records = []
    for _ in range(answers):
        owner, offset = _name(message, offset)
        rtype, _, _, length = struct.unpack(">HHIH", message[offset : offset + 10])
        offset += 10
        data = message[offset : offset + length]
        if rtype == A and length == 4:
            records.append(Record(owner.lower(), "A", str(ipaddress.IPv4Address(data))))
        elif rtype == AAAA and length == 16:
            records.append(Record(owner.lower(), "AAAA", str(ipaddress.IPv6Address(data))))
        elif rtype == CNAME:
            records.append(Record(owner.lower(), "CNAME", _name(message, offset)[0].lower()))
        offset += length
    return flags & 0x000F, records


def default_server() -> tuple[str, int]:
    configured = os.environ.get("NEXTMAVENS_DNS_SERVER", "").strip()
    if configured:
        host, _, port = configured.rpartition(":") if configured.count(":") == 1 else (configured, "", "")
        return host or configured, int(port or 53)
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1], 53
    except OSError:
        pass
    return "127.0.0.1", 53


def query(name: str, qtype: int, server: tuple[str, int] | None = None, timeout: float = 3.0) -> list[Record]:
    """The answer records (a CNAME chain included); [] for a name that does not exist. OSError when no answer."""
    address = server or default_server()
    query_id = secrets.randbelow(65536)
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(encode_query(query_id, name, qtype), address)
        for _ in range(4):
            data, _ = sock.recvfrom(4096)
            try:
                rcode, records = decode_answer(data, query_id)
            except ValueError:
                continue
            if rcode not in (0, 3):  # 3: no such name
                raise OSError(f"DNS server {address[0]} answered error {rcode} for {name}")
            return records
    raise OSError(f"no answer from the DNS server {address[0]} for {name}")


def addresses(name: str, server: tuple[str, int] | None = None) -> list[str]:
    """IPv4 addresses `name` resolves to (through its CNAMEs): the DNS pre-check's resolver."""
    return [r.value for r in query(name, A, server) if r.type == "A"]
