"""Certificate planning, back-off and certbot command lines, with plain values."""

from __future__ import annotations

import subprocess

from nextmavens.edge.certs import (
    BACKOFF_BASE_S,
    BackoffState,
    CertbotDirs,
    CertSpec,
    certbot_command,
    desired_certificates,
    ensure_certificates,
    plan_certificates,
)
from tests.support.edgesamples import project, sample_projects, settings

NOW = 1_800_000_000.0


def here(name: str) -> list[str]:
    return ["203.0.113.10"]


def test_one_lineage_per_served_name_by_default():
    specs = desired_certificates(settings(), sample_projects())
    assert [(s.cert_name, s.names, s.challenge) for s in specs] == [
        ("api.crm.acme.test", ("api.crm.acme.test",), "http-01"),
        ("api.shop.acme.test", ("api.shop.acme.test",), "http-01"),
        ("crm.acme.test", ("crm.acme.test",), "http-01"),
        ("crm.api.example.test", ("crm.api.example.test",), "http-01"),
        ("helpdesk.api.example.test", ("helpdesk.api.example.test",), "http-01"),
        ("shop.api.example.test", ("shop.api.example.test",), "http-01"),
        ("studio.example.test", ("studio.example.test",), "http-01"),
    ]


def test_wildcard_mode_replaces_per_project_api_names():
    specs = desired_certificates(settings(wildcard_dns01=True), sample_projects())
    names = {s.cert_name: s for s in specs}
    assert names["api.example.test"] == CertSpec(
        "api.example.test", ("api.example.test", "*.api.example.test"), "dns-01-cloudflare"
    )
    assert "shop.api.example.test" not in names and "api.shop.acme.test" in names


def test_plan_requests_missing_keeps_present_and_renews_changed_names():
    desired = [
        CertSpec("a.test", ("a.test",)),
        CertSpec("b.test", ("b.test",)),
        CertSpec("c.test", ("c.test",)),
    ]
    observed = {"a.test": frozenset({"a.test"}), "b.test": frozenset({"b.test", "old.b.test"})}
    plan = plan_certificates(settings(), desired, observed, BackoffState(), here, NOW)
    assert [(d.spec.cert_name, d.action, d.reason) for d in plan] == [
        ("a.test", "keep", "certificate present with the same names"),
        ("b.test", "request", "name list changed"),
        ("c.test", "request", "missing"),
    ]


def test_dns_check_skips_names_not_pointing_here_or_not_resolving():
    def resolve(name: str) -> list[str]:
        if name == "gone.test":
            raise OSError("NXDOMAIN")
        return {"elsewhere.test": ["198.51.100.1"], "empty.test": []}.get(name, ["203.0.113.10"])

    desired = [CertSpec(n, (n,)) for n in ("elsewhere.test", "gone.test", "empty.test", "ok.test")]
    plan = plan_certificates(settings(), desired, {}, BackoffState(), resolve, NOW)
    reasons = {d.spec.cert_name: (d.action, d.reason) for d in plan}
    assert reasons["ok.test"] == ("request", "missing")
    assert reasons["elsewhere.test"] == (
        "skip",
        "missing; DNS check failed: elsewhere.test resolves to 198.51.100.1, not to this host (203.0.113.10)",
    )
    assert reasons["gone.test"][0] == "skip" and "does not resolve" in reasons["gone.test"][1]
    assert reasons["empty.test"][0] == "skip"


def test_wildcard_dns01_skips_http_dns_check():
    spec = CertSpec("api.example.test", ("api.example.test", "*.api.example.test"), "dns-01-cloudflare")

    def nothing(name: str) -> list[str]:
        return []

    (decision,) = plan_certificates(settings(), [spec], {}, BackoffState(), nothing, NOW)
    assert decision.action == "request"


def test_backoff_doubles_and_blocks_until_due_then_clears():
    state = BackoffState()
    first = state.record_failure("a.test", "boom", NOW)
    assert first.next_attempt == NOW + BACKOFF_BASE_S
    second = state.record_failure("a.test", "boom", NOW)
    assert second.failures == 2 and second.next_attempt == NOW + 2 * BACKOFF_BASE_S
    spec = CertSpec("a.test", ("a.test",))
    (blocked,) = plan_certificates(settings(), [spec], {}, state, here, NOW + 10)
    assert blocked.action == "skip" and "backing off" in blocked.reason
    (due,) = plan_certificates(settings(), [spec], {}, state, here, NOW + 2 * BACKOFF_BASE_S)
    assert due.action == "request"
    assert BackoffState.from_json(state.to_json()) == state
    state.record_success("a.test")
    assert state.failures == {}


def test_certbot_webroot_command_line_is_an_exact_argv():
    config = settings(acme_email="ops@example.test", acme_server="https://127.0.0.1:14000/dir")
    argv = certbot_command(config, CertSpec("x.test", ("x.test",)), CertbotDirs("/c", "/w", "/l"))
    assert argv == [
        "certbot", "certonly", "--non-interactive", "--agree-tos", "--cert-name", "x.test",
        "--config-dir", "/c", "--work-dir", "/w", "--logs-dir", "/l",
        "--webroot", "--webroot-path", "/var/www/acme",
        "--email", "ops@example.test", "--server", "https://127.0.0.1:14000/dir", "-d", "x.test",
    ]  # fmt: skip


def test_certbot_dns01_cloudflare_wildcard_command_line():
    config = settings(wildcard_dns01=True)
    spec = desired_certificates(config, [])[0]
    argv = certbot_command(config, spec, CertbotDirs())
    assert argv == [
        "certbot", "certonly", "--non-interactive", "--agree-tos", "--cert-name", "api.example.test",
        "--config-dir", "/etc/letsencrypt", "--work-dir", "/var/lib/letsencrypt",
        "--logs-dir", "/var/log/letsencrypt",
        "--dns-cloudflare", "--dns-cloudflare-credentials", "/etc/letsencrypt/cloudflare.ini",
        "--dns-cloudflare-propagation-seconds", "30",
        "--register-unsafely-without-email", "-d", "api.example.test", "-d", "*.api.example.test",
    ]  # fmt: skip


def test_failed_request_is_recorded_and_not_retried_during_backoff(tmp_path):
    config = settings(acme_webroot=str(tmp_path / "webroot"), host_ipv4="203.0.113.10")
    projects = [project("one")]
    dirs = CertbotDirs(str(tmp_path / "le"), str(tmp_path / "w"), str(tmp_path / "l"))
    calls: list[list[str]] = []

    def failing(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "Challenge failed for domain one.api.example.test")

    backoff = tmp_path / "backoff.json"
    report = ensure_certificates(config, projects, dirs, backoff, resolve=here, runner=failing, now=NOW)
    assert set(report.failed) == {"one.api.example.test", "studio.example.test"}
    assert len(calls) == 2
    again = ensure_certificates(config, projects, dirs, backoff, resolve=here, runner=failing, now=NOW + 60)
    assert again.requested == [] and len(calls) == 2
    assert all("backing off" in d.reason for d in again.decisions)
    later = ensure_certificates(
        config, projects, dirs, backoff, resolve=here, runner=failing, now=NOW + BACKOFF_BASE_S + 1
    )
    assert len(later.requested) == 2 and len(calls) == 4
