"""Debian's pebble (ACME test server) and pebble-challtestsrv (its DNS), started on loopback by the tests."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.localnginx import need, wait_port
from tests.support.ports import free_ports


def _tls_for_pebble(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for 127.0.0.1/localhost; returns (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nextmavens test pebble CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def pebble(workdir: Path, http_port: int):
    """Yields (directory URL, CA bundle path). Pebble validates HTTP-01 on `http_port` of 127.0.0.1."""
    pebble_bin, challtestsrv_bin = need("pebble"), need("pebble-challtestsrv")
    ca, cert, key = _tls_for_pebble(workdir / "tls")
    acme_port, mgmt_port, dns_port, chall_mgmt, tls_port = free_ports(5)
    config = workdir / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme_port}",
                    "managementListenAddress": f"127.0.0.1:{mgmt_port}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": http_port,
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    log = (workdir / "pebble.log").open("wb")
    dns = subprocess.Popen(  # noqa: S603
        [
            challtestsrv_bin,
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"127.0.0.1:{chall_mgmt}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
    acme = None
    try:
        wait_port(chall_mgmt)
        acme = subprocess.Popen(  # noqa: S603
            [pebble_bin, "-config", str(config), "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_port(acme_port)
        time.sleep(0.2)
        yield f"https://127.0.0.1:{acme_port}/dir", ca
    finally:
        if acme is not None:
            _stop(acme)
        _stop(dns)
        log.close()
