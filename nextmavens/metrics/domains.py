"""`nextmavens domains ORG/REF [--json]`: for each custom domain of a project, the DNS record to create, what the
name resolves to now, whether its certificate is issued and when it expires, and the next step.

A subdomain gets a CNAME to the project's API name; an apex (two labels, e.g. `shop.test`: an apex cannot hold a
CNAME) A records to the host's address. DNS counts as ready by the edge's own pre-check (`edge/certs.dns_problems`:
the name resolves to the host's address), the same one that keeps a domain whose DNS is not ready from costing a
failed Let's Encrypt validation. Judging is pure (`domain_report`); looking up (`check_domains`) is I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nextmavens.edge.certs import dns_problems
from nextmavens.metrics.dnsquery import CNAME, A, Record

RENEW_DAYS = 30  # certbot renews a certificate this close to its end


@dataclass(frozen=True)
class Certificate:
    names: frozenset[str]
    expires_at: datetime


def is_apex(domain: str) -> bool:
    return domain.count(".") == 1


def expected_record(domain: str, api_host: str, host_ipv4: str) -> dict[str, str]:
    if is_apex(domain):
        return {"type": "A", "name": domain, "value": host_ipv4}
    return {"type": "CNAME", "name": domain, "value": api_host}


def domain_report(
    domain: str,
    api_host: str,
    host_ipv4: str,
    records: Sequence[Record] | None,
    lookup_error: str | None,
    certificate: Certificate | None,
    now: datetime,
) -> dict[str, Any]:
    """One domain's state and its next step (pure)."""
    record = expected_record(domain, api_host, host_ipv4)
    addresses = [r.value for r in records or () if r.type == "A"]
    problems = [lookup_error] if lookup_error else dns_problems([domain], host_ipv4, lambda _name: addresses)
    cname = next((r.value for r in records or () if r.type == "CNAME" and r.name == domain), None)
    covered = certificate is not None and domain in certificate.names
    days_left = (certificate.expires_at - now).days if certificate is not None and covered else None
    if problems:
        step = f"create {record['type']} {record['name']} -> {record['value']} at the domain's DNS provider"
        if cname and cname != api_host:
            step = f"change the CNAME of {domain} from {cname} to {api_host}"
        step += "; the certificate is requested once it resolves to this host (no Let's Encrypt attempt before)"
    elif not covered:
        step = "DNS is ready: the next apply (the reconcile timer's, within 5 minutes) requests the certificate"
    elif days_left is not None and days_left < 0:
        step = "the certificate has expired: run `nextmavens apply` and check the certbot log"
    elif days_left is not None and days_left <= RENEW_DAYS:
        step = f"the certificate ends in {days_left} days: certbot's renewal timer renews it"
    else:
        step = "nothing to do: DNS and certificate are in place"
    return {
        "domain": domain,
        "record": record,
        "resolves_to": {"cname": cname, "addresses": addresses, "error": lookup_error},
        "dns_ready": not problems,
        "dns_problems": problems,
        "certificate": {
            "issued": covered,
            "expires_at": certificate.expires_at.isoformat() if certificate is not None and covered else None,
            "days_left": days_left,
        },
        "next_step": step,
    }


def read_certificate(letsencrypt_dir: Path, name: str) -> Certificate | None:
    """The live certificate of lineage `name` (the edge names each custom domain's lineage after it)."""
    from cryptography import x509

    chain = letsencrypt_dir / "live" / name / "fullchain.pem"
    try:
        cert = x509.load_pem_x509_certificate(chain.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return Certificate(frozenset(san.value.get_values_for_type(x509.DNSName)), cert.not_valid_after_utc)


def check_domains(
    domains: Sequence[str],
    api_host: str,
    host_ipv4: str,
    letsencrypt_dir: Path,
    lookup: Callable[[str, int], list[Record]],
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    reports = []
    for domain in domains:
        records: list[Record] | None = None
        error = None
        try:
            records = lookup(domain, A) + [r for r in lookup(domain, CNAME) if r.type == "CNAME"]
        except OSError as exc:
            error = f"{domain} could not be looked up: {exc}"
        unique = list(dict.fromkeys(records)) if records is not None else None
        reports.append(
            domain_report(
                domain, api_host, host_ipv4, unique, error, read_certificate(letsencrypt_dir, domain),
                now or datetime.now(UTC),
            )
        )
    return reports


def render(project: str, reports: list[dict[str, Any]]) -> str:
    if not reports:
        return f"{project} has no custom domains (manifest `domains:`)"
    lines = []
    for report in reports:
        record, now = report["record"], report["resolves_to"]
        seen = ", ".join(filter(None, [f"CNAME {now['cname']}" if now["cname"] else "", *now["addresses"]]))
        cert = report["certificate"]
        lines += [
            f"{report['domain']}",
            f"  record:      {record['type']} {record['name']} -> {record['value']}",
            f"  resolves to: {seen or now['error'] or 'nothing'}" + ("  (ready)" if report["dns_ready"] else ""),
            "  certificate: "
            + (f"issued, expires {cert['expires_at'][:10]} ({cert['days_left']} days)" if cert["issued"] else "none"),
            f"  next step:   {report['next_step']}",
        ]
    return "\n".join(lines)
