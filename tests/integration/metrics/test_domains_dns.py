"""`nextmavens domains` against the records of pebble's DNS test server (Debian's pebble-challtestsrv): a CNAME to
the project's API name, an apex A record, a CNAME elsewhere, a name with no record; a certificate in the live
folder for one of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from nextmavens.metrics.dnsquery import query
from nextmavens.metrics.domains import check_domains
from nextmavens.metrics.domainscli import domains
from tests.support.edgesamples import settings_fields
from tests.support.localnginx import need, self_signed, wait_port
from tests.support.ports import free_ports
from tests.support.projects import write_project, write_raw

pytestmark = pytest.mark.integration
HOST_IP = "203.0.113.10"


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """(DNS port, management URL) of a pebble-challtestsrv answering only what the test adds."""
    binary = need("pebble-challtestsrv")
    dns_port, management = free_ports(2)
    with (tmp_path / "challtestsrv.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [binary, "-defaultIPv4", "", "-defaultIPv6", "", "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
             "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{management}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_port(management)
            yield dns_port, f"http://127.0.0.1:{management}"
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


def add(management: str, path: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(f"{management}/{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        assert answer.status == 200


def test_each_domain_gets_its_record_state_and_next_step(dns: tuple[int, str], tmp_path: Path) -> None:
    port, management = dns
    add(management, "add-a", {"host": "shop.api.example.test.", "addresses": [HOST_IP]})
    add(management, "set-cname", {"host": "www.shop.test.", "target": "shop.api.example.test."})
    add(management, "add-a", {"host": "shop.test.", "addresses": ["198.51.100.7"]})  # an apex, pointed elsewhere
    add(management, "set-cname", {"host": "old.shop.test.", "target": "shop.herokuapp.test."})
    letsencrypt = tmp_path / "letsencrypt"
    self_signed(letsencrypt / "live" / "www.shop.test", "www.shop.test")

    def lookup(name: str, qtype: int):  # type: ignore[no-untyped-def]
        return query(name, qtype, ("127.0.0.1", port))

    now = datetime.now(UTC)
    reports = check_domains(
        ["www.shop.test", "shop.test", "old.shop.test", "new.shop.test"], "shop.api.example.test", HOST_IP,
        letsencrypt, lookup, now,
    )
    www, apex, old, new = reports
    assert www["record"] == {"type": "CNAME", "name": "www.shop.test", "value": "shop.api.example.test"}
    assert www["resolves_to"] == {"cname": "shop.api.example.test", "addresses": [HOST_IP], "error": None}
    assert www["dns_ready"] and www["certificate"]["issued"] and www["certificate"]["days_left"] == 0
    assert www["next_step"].startswith("the certificate ends in 0 days")
    assert apex["record"] == {"type": "A", "name": "shop.test", "value": HOST_IP}
    assert not apex["dns_ready"] and apex["dns_problems"] == [
        f"shop.test resolves to 198.51.100.7, not to this host ({HOST_IP})"
    ]
    assert apex["next_step"].startswith(f"create A shop.test -> {HOST_IP}") and not apex["certificate"]["issued"]
    assert old["resolves_to"]["cname"] == "shop.herokuapp.test"
    assert old["next_step"].startswith("change the CNAME of old.shop.test from shop.herokuapp.test")
    assert new["resolves_to"]["addresses"] == [] and new["dns_problems"] == ["new.shop.test does not resolve"]

    # DNS ready, no certificate yet: the next apply requests it
    add(management, "clear-a", {"host": "shop.test."})
    add(management, "add-a", {"host": "shop.test.", "addresses": [HOST_IP]})
    (again,) = check_domains(["shop.test"], "shop.api.example.test", HOST_IP, letsencrypt, lookup, now)
    assert again["dns_ready"] and again["next_step"].startswith("DNS is ready: the next apply")


def test_the_command(dns: tuple[int, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port, management = dns
    add(management, "set-cname", {"host": "api.shop.acme.test.", "target": "shop.api.example.test."})
    add(management, "add-a", {"host": "shop.api.example.test.", "addresses": [HOST_IP]})
    projects = tmp_path / "projects"
    write_raw(projects, "acme", "org.yaml", "name: Acme\nmembers: []\n")
    write_project(projects, "acme", "shop", domains=["api.shop.acme.test"])
    edge = tmp_path / "edge.yaml"
    edge.write_text(yaml.safe_dump({"settings": settings_fields(letsencrypt_dir=str(tmp_path / "le"))}))
    monkeypatch.setenv("NEXTMAVENS_DNS_SERVER", f"127.0.0.1:{port}")
    runner = CliRunner()
    answer = runner.invoke(domains, ["acme/shop", "--json", "--projects", str(projects), "--edge-config", str(edge)])
    assert answer.exit_code == 0, answer.output
    body = json.loads(answer.output)
    assert body["api_host"] == "shop.api.example.test"
    assert [d["domain"] for d in body["domains"]] == ["api.shop.acme.test"]
    assert body["domains"][0]["dns_ready"] and body["domains"][0]["certificate"]["issued"] is False
    text = runner.invoke(domains, ["acme/shop", "--projects", str(projects), "--edge-config", str(edge)])
    assert "record:      CNAME api.shop.acme.test -> shop.api.example.test" in text.output
    missing = runner.invoke(domains, ["acme/nosuch", "--projects", str(projects), "--edge-config", str(edge)])
    assert missing.exit_code == 1 and "not declared" in missing.output
