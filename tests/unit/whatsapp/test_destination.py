"""Which addresses the forwarder refuses to post to, whatever form the tenant writes them in, and the parts of a
webhook_url the post uses."""

from __future__ import annotations

import ipaddress

import pytest

from nextmavens.whatsapp.delivery import resolve
from nextmavens.whatsapp.destination import BadDestination, destination, refusal, refused

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.18.0.5": "private",  # a container on a Docker network (Docker's default pools are private ranges)
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # the cloud's metadata service
    "100.64.0.1": "shared address space",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fe80::1": "link-local",
    "fec0::1": "private",
    "ff02::1": "multicast",
    "2001:db8::1": "private",  # documentation
}


@pytest.mark.parametrize(("text", "reason"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(text: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(text)) == reason


@pytest.mark.parametrize("text", ["255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1", "::2"])
def test_reserved_and_special_purpose_addresses_are_refused(text: str) -> None:
    assert refusal(ipaddress.ip_address(text)) is not None


@pytest.mark.parametrize("text", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"])
def test_public_addresses_pass(text: str) -> None:
    assert refusal(ipaddress.ip_address(text)) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("::ffff:127.0.0.1", "loopback (inside ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "link-local (inside ::ffff:a9fe:a9fe)"),
        ("::ffff:10.0.0.1", "private (inside ::ffff:a00:1)"),
        ("2002:7f00:1::", "loopback (inside 2002:7f00:1::)"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local (inside 64:ff9b::a9fe:a9fe)"),  # NAT64 around the metadata address
    ],
)
def test_ipv6_forms_of_an_ipv4_address_are_judged_by_that_address(text: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(text)) == reason


def test_an_ipv6_form_of_a_public_ipv4_address_passes() -> None:
    assert refusal(ipaddress.ip_address("::ffff:8.8.8.8")) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost", "[::1]"])
def test_other_spellings_of_loopback_resolve_to_it_and_are_refused(host: str) -> None:
    """getaddrinfo reads decimal, hex, octal and short forms as the C library does: the check sees the address."""
    addresses = resolve(host.strip("[]"), 80)
    assert addresses and all(a.is_loopback for a in addresses)
    reason = refused(addresses)
    assert reason is not None and "loopback" in reason


def test_allowing_private_addresses_lifts_all_but_unspecified_and_multicast() -> None:
    for text in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:127.0.0.1"):
        assert refusal(ipaddress.ip_address(text), allow_private=True) is None
    for text in ("0.0.0.0", "::", "224.0.0.1", "ff02::1"):
        assert refusal(ipaddress.ip_address(text), allow_private=True) is not None


def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    public, private = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.8")
    assert refused([public]) is None
    assert refused([public, private]) == "10.0.0.8 is private"
    assert refused([]) == "the name resolves to no address"


def test_a_destination_keeps_host_port_and_target_and_logs_no_path() -> None:
    place = destination("https://App.example.com/hooks/wa?token=abc")
    assert (place.scheme, place.host, place.port, place.target) == (
        "https",
        "app.example.com",
        443,
        "/hooks/wa?token=abc",
    )
    assert place.label == "https://app.example.com:443"
    assert destination("http://[2001:db8::1]:8080").target == "/"
    assert destination("http://[2001:db8::1]:8080").label == "http://[2001:db8::1]:8080"
    for bad in ("ftp://example.com/", "http:///nohost", "http://example.com:99999/"):
        with pytest.raises(BadDestination):
            destination(bad)
