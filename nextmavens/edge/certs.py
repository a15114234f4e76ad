"""Which certificates the edge needs, which to request now, and the certbot command lines for them.

Default mode, HTTP-01 through the webroot: one certificate lineage per served name (`<ref>.<api domain>`,
each custom domain, Studio), so one misconfigured custom domain never blocks another name. Optional DNS-01
wildcard mode (Cloudflare): one lineage `<api domain>` for `<api domain>` and `*.<api domain>`; custom domains
and Studio stay on HTTP-01.

A certificate is requested only when its lineage is missing or its name list differs, only after the DNS
check (every name resolves to the host's address, so a misconfigured domain does not burn Let's Encrypt's
rate limits), and not while a previous failure's back-off lasts. Planning is pure: the resolver, the
observed lineages, the back-off state and the clock are inputs.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nextmavens.edge.inputs import EdgeProject, project_hostnames, served
from nextmavens.edge.settings import LETSENCRYPT_DIR, EdgeSettings
from nextmavens.files import write_atomic
from nextmavens.runner import Runner, run_command

BACKOFF_BASE_S = 300  # first retry after 5 minutes
BACKOFF_MAX_S = 24 * 3600  # then doubling, at most a day

Resolver = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class CertSpec:
    cert_name: str
    names: tuple[str, ...]
    challenge: str = "http-01"  # or "dns-01-cloudflare"


def desired_certificates(
    settings: EdgeSettings, projects: Sequence[EdgeProject], extra_names: Iterable[str] = ()
) -> list[CertSpec]:
    """`extra_names`: names served outside the edge's own file that get a lineage of their own like a project's
    custom domain (the deployed apps' domains and previews, whose nginx files serve the ACME path)."""
    specs: list[CertSpec] = []
    if settings.wildcard_dns01:
        specs.append(
            CertSpec(settings.api_domain, (settings.api_domain, f"*.{settings.api_domain}"), "dns-01-cloudflare")
        )
    specs.append(CertSpec(settings.studio_domain, (settings.studio_domain,)))
    if settings.platform_domain is not None:
        specs.append(CertSpec(settings.platform_domain, (settings.platform_domain,)))
    if settings.project_studio_domain not in (None, settings.studio_domain):  # the same name: one certificate
        specs.append(CertSpec(settings.project_studio_domain, (settings.project_studio_domain,)))
    for project in served(projects):
        for index, name in enumerate(project_hostnames(settings, project)):
            if index == 0 and settings.wildcard_dns01:
                continue  # covered by the wildcard lineage
            specs.append(CertSpec(name, (name,)))
    covered = {name for spec in specs for name in spec.names}
    specs += [CertSpec(name, (name,)) for name in sorted(set(extra_names) - covered)]
    return sorted(specs, key=lambda s: s.cert_name)


def cert_for_name(specs: Sequence[CertSpec], name: str) -> CertSpec | None:
    for spec in specs:
        if name in spec.names:
            return spec
    return None


def live_paths(settings: EdgeSettings, cert_name: str) -> tuple[str, str]:
    base = f"{settings.letsencrypt_dir}/live/{cert_name}"
    return f"{base}/fullchain.pem", f"{base}/privkey.pem"


# ---------------------------------------------------------------- back-off state


@dataclass
class Failure:
    failures: int
    last_attempt: float
    next_attempt: float
    last_error: str


@dataclass
class BackoffState:
    failures: dict[str, Failure] = field(default_factory=dict)

    def blocked_until(self, cert_name: str, now: float) -> float | None:
        failure = self.failures.get(cert_name)
        if failure is None or failure.next_attempt <= now:
            return None
        return failure.next_attempt

    def record_failure(self, cert_name: str, error: str, now: float) -> Failure:
        previous = self.failures.get(cert_name)
        count = 1 if previous is None else previous.failures + 1
        delay = min(BACKOFF_BASE_S * 2 ** (count - 1), BACKOFF_MAX_S)
        failure = Failure(count, now, now + delay, error[-500:])
        self.failures[cert_name] = failure
        return failure

    def record_success(self, cert_name: str) -> None:
        self.failures.pop(cert_name, None)

    def to_json(self) -> str:
        return json.dumps({k: asdict(v) for k, v in sorted(self.failures.items())}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackoffState:
        return cls({k: Failure(**v) for k, v in json.loads(text).items()})

    @classmethod
    def load(cls, path: Path) -> BackoffState:
        return cls.from_json(path.read_text()) if path.exists() else cls()

    def save(self, path: Path) -> None:
        write_atomic(path, self.to_json(), 0o644)


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class CertDecision:
    spec: CertSpec
    action: str  # "request" | "keep" | "skip"
    reason: str


def plan_certificates(
    settings: EdgeSettings,
    desired: Sequence[CertSpec],
    observed: Mapping[str, frozenset[str]],
    backoff: BackoffState,
    resolve: Resolver,
    now: float,
) -> list[CertDecision]:
    """observed: cert name -> names its live certificate covers."""
    decisions: list[CertDecision] = []
    for spec in desired:
        have = observed.get(spec.cert_name)
        if have is not None and have == frozenset(spec.names):
            decisions.append(CertDecision(spec, "keep", "certificate present with the same names"))
            continue
        why = "missing" if have is None else "name list changed"
        until = backoff.blocked_until(spec.cert_name, now)
        if until is not None:
            decisions.append(CertDecision(spec, "skip", f"{why}; backing off after a failure until {_utc(until)}"))
            continue
        if spec.challenge == "http-01":
            wrong = dns_problems(spec.names, settings.host_ipv4, resolve)
            if wrong:
                decisions.append(CertDecision(spec, "skip", f"{why}; DNS check failed: {'; '.join(wrong)}"))
                continue
        decisions.append(CertDecision(spec, "request", why))
    return decisions


def dns_problems(names: Iterable[str], host_ip: str, resolve: Resolver) -> list[str]:
    problems = []
    for name in names:
        try:
            addresses = sorted(set(resolve(name)))
        except OSError as exc:
            problems.append(f"{name} does not resolve ({exc.__class__.__name__})")
            continue
        if not addresses:
            problems.append(f"{name} does not resolve")
        elif host_ip not in addresses:
            problems.append(f"{name} resolves to {', '.join(addresses)}, not to this host ({host_ip})")
    return problems


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def system_resolver(name: str) -> list[str]:
    """IPv4 addresses of a name through the host's resolver (the production resolver)."""
    import socket

    infos = socket.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# ---------------------------------------------------------------- certbot command lines


@dataclass(frozen=True)
class CertbotDirs:
    config_dir: str = LETSENCRYPT_DIR  # the host wires EdgeSettings.letsencrypt_dir in
    work_dir: str = "/var/lib/letsencrypt"
    logs_dir: str = "/var/log/letsencrypt"


def certbot_command(settings: EdgeSettings, spec: CertSpec, dirs: CertbotDirs, certbot: str = "certbot") -> list[str]:
    """argv for one lineage; never run through a shell."""
    argv = [
        certbot,
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--cert-name",
        spec.cert_name,
        "--config-dir",
        dirs.config_dir,
        "--work-dir",
        dirs.work_dir,
        "--logs-dir",
        dirs.logs_dir,
    ]
    if spec.challenge == "http-01":
        argv += ["--webroot", "--webroot-path", settings.acme_webroot]
    elif spec.challenge == "dns-01-cloudflare":
        argv += [
            "--dns-cloudflare",
            "--dns-cloudflare-credentials",
            settings.cloudflare_credentials,
            "--dns-cloudflare-propagation-seconds",
            "30",
        ]
    else:
        raise ValueError(f"unknown challenge {spec.challenge!r}")
    argv += ["--email", settings.acme_email] if settings.acme_email else ["--register-unsafely-without-email"]
    if settings.acme_server:
        argv += ["--server", settings.acme_server]
    for name in spec.names:
        argv += ["-d", name]
    return argv


# ---------------------------------------------------------------- observing and running (I/O)


def observe_certificates(letsencrypt_dir: str | Path) -> dict[str, frozenset[str]]:
    """cert name -> DNS names of its live certificate, for every lineage under <dir>/live."""
    from cryptography import x509

    live = Path(letsencrypt_dir) / "live"
    observed: dict[str, frozenset[str]] = {}
    if not live.is_dir():
        return observed
    for lineage in sorted(live.iterdir()):
        chain = lineage / "fullchain.pem"
        if not chain.is_file() or not (lineage / "privkey.pem").exists():
            continue
        try:
            cert = x509.load_pem_x509_certificate(chain.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (ValueError, x509.ExtensionNotFound):
            continue
        observed[lineage.name] = frozenset(san.value.get_values_for_type(x509.DNSName))
    return observed


@dataclass(frozen=True)
class CertRunReport:
    decisions: list[CertDecision]
    issued: list[str]
    failed: dict[str, str]  # cert name -> error (certbot's last lines)

    @property
    def requested(self) -> list[str]:
        return [d.spec.cert_name for d in self.decisions if d.action == "request"]

    def summary(self) -> list[str]:
        lines = [f"{d.spec.cert_name}: {d.action} ({d.reason})" for d in self.decisions]
        lines += [f"{name}: FAILED: {error}" for name, error in sorted(self.failed.items())]
        return lines


def ensure_certificates(
    settings: EdgeSettings,
    projects: Sequence[EdgeProject],
    dirs: CertbotDirs,
    backoff_file: Path,
    resolve: Resolver = system_resolver,
    runner: Runner | None = None,
    env: Mapping[str, str] | None = None,
    now: float | None = None,
    certbot: str = "certbot",
    extra_names: Iterable[str] = (),
) -> CertRunReport:
    """Request the certificates that are missing or whose names changed; record failures for back-off.

    The webroot vhost must already be served (apply nginx first; a name without a certificate serves the
    ACME path over plain HTTP). After issuing, re-render and apply nginx so the new names get HTTPS.
    """
    current = time.time() if now is None else now
    Path(settings.acme_webroot, ".well-known", "acme-challenge").mkdir(parents=True, exist_ok=True)
    backoff = BackoffState.load(backoff_file)
    desired = desired_certificates(settings, projects, extra_names)
    decisions = plan_certificates(settings, desired, observe_certificates(dirs.config_dir), backoff, resolve, current)
    run_env = dict(os.environ if env is None else env)

    run = runner or functools.partial(run_command, timeout=300, env=run_env)
    issued: list[str] = []
    failed: dict[str, str] = {}
    for decision in decisions:
        if decision.action != "request":
            continue
        name = decision.spec.cert_name
        try:
            result = run(certbot_command(settings, decision.spec, dirs, certbot))
        except (OSError, subprocess.SubprocessError) as exc:
            result = subprocess.CompletedProcess([], 1, "", f"{exc.__class__.__name__}: {exc}")
        if result.returncode == 0:
            backoff.record_success(name)
            issued.append(name)
        else:
            error = (result.stderr or result.stdout or "certbot failed").strip()
            backoff.record_failure(name, error, current)
            failed[name] = error[-500:]
    backoff_file.parent.mkdir(parents=True, exist_ok=True)
    backoff.save(backoff_file)
    return CertRunReport(decisions, issued, failed)
