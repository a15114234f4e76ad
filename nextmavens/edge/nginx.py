"""nginx vhosts for the edge, and applying them safely (`nginx -t`, reload, last good config kept).

Names and what they serve:
- `*.<api domain>` on plain HTTP: the ACME path, everything else to Kong (a project's API works over HTTP
  until its certificate exists);
- each name with a certificate (`<ref>.<api domain>`, custom domains; or the wildcard lineage): HTTP only
  for ACME and a redirect to HTTPS; HTTPS to Kong;
- each custom domain without a certificate yet: ACME plus plain HTTP to Kong;
- Studio: HTTPS with basic auth; before its certificate exists only the ACME path (503 otherwise), so the
  operator's password never crosses the network in clear;
- the platform service (platform_domain): HTTPS to its loopback port; before its certificate exists only the ACME
  path and `/healthz` (503 otherwise), so no access token crosses the network in clear. nginx sets
  X-Forwarded-For to the address it saw (a client's own header is dropped), which the service trusts from loopback
  only and counts failed logins by;
- Evolution's webhooks (evolution_hooks_port, every address): `/hooks/evolution/` to the service from the Evolution
  container's address only (403 for any other; ufw also opens the port to its network alone), everything else
  404; bodies capped like the service's, timeouts inside Evolution's own request timeout;
- Studio for projects (project_studio_domain): HTTPS only; every request through `auth_request` to the service,
  which names the project's Studio (its `nm_studio` cookie removed on the way); the enter path to the service;
- the meta gate (studio_meta_gate_listen, from studio_meta_gate_source only): postgres-meta behind `auth_request`,
  its `x-connection-encrypted` replaced by the service's answer (the project's owner role) or the request refused;
- any other name: the connection is closed (444; TLS handshakes are rejected).

`render_nginx` is pure; `NginxApplier` does the I/O.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from nextmavens.edge.certs import cert_for_name, desired_certificates, live_paths
from nextmavens.edge.inputs import EdgeProject, check_edge_inputs, project_hostnames, served
from nextmavens.edge.logformat import LOG_FORMAT as METRICS_LOG_FORMAT
from nextmavens.edge.settings import EdgeSettings
from nextmavens.files import write_atomic
from nextmavens.naming import STUDIO_ENTER_PATH
from nextmavens.runner import Runner, run_command
from nextmavens.templates import EDGE_TEMPLATES, environment

STUDIO_REALM = "NextMavens Studio"


@dataclass(frozen=True)
class Vhost:
    comment: str
    server_names: tuple[str, ...]
    upstream: str  # nm_kong | nm_studio
    cert: tuple[str, str] | None  # (fullchain, privkey) when the certificate exists
    body_mb: int
    frame: str = "DENY"
    basic_auth: tuple[str, str] | None = None
    plain_ok: bool = True  # without a certificate: proxy over HTTP (True) or only ACME (False)


@dataclass(frozen=True)
class PlatformVhost:
    name: str
    cert: tuple[str, str] | None  # (fullchain, privkey) when the certificate exists


@dataclass(frozen=True)
class ProjectStudio:
    name: str
    cert: tuple[str, str] | None
    body_mb: int


@dataclass(frozen=True)
class MetaGate:
    listen: str  # [address:]port, on the per-project Studios' network
    source: str  # the one network allowed: theirs
    meta: str  # postgres-meta's host:port
    body_mb: int


def project_studio(settings: EdgeSettings, certificates: Collection[str]) -> ProjectStudio | None:
    name = settings.project_studio_domain
    if name is None or settings.platform_upstream is None:
        return None
    cert = live_paths(settings, name) if name in certificates else None
    return ProjectStudio(name, cert, settings.client_max_body_size_mb)


def meta_gate(settings: EdgeSettings) -> MetaGate | None:
    listen, source = settings.studio_meta_gate_listen, settings.studio_meta_gate_source
    meta = settings.postgres_meta_upstream
    if listen is None or source is None or meta is None or settings.platform_upstream is None:
        return None
    return MetaGate(listen, source, meta, settings.client_max_body_size_mb)


# Bodies the service accepts (ServiceSettings.max_body_bytes is 1 MiB): nginx refuses larger ones first.
PLATFORM_BODY_MB = 1
# A write answers after its apply, and a first apply starts containers and requests certificates.
PLATFORM_READ_TIMEOUT_S = 960
# App deploys (POST .../apps/{app}/deploys): the archive's bound (ServiceSettings.deploy_max_body_bytes) and the
# stream's (deploy_max_seconds), so nginx refuses a larger upload first and never cuts a build short.
DEPLOY_BODY_MB = 50
DEPLOY_READ_TIMEOUT_S = 1800


@dataclass(frozen=True)
class HooksServer:
    listen: str  # [address:]port
    source: str  # the one address allowed: the Evolution container's


# Evolution waits WEBHOOK_REQUEST_TIMEOUT_MS (10 s, stacks/evolution) per try and retries on a timeout: nginx gives
# up first, so the try ends with nginx's 504 (retried) rather than a cut connection.
HOOKS_READ_TIMEOUT_S = 8


def hooks_server(settings: EdgeSettings) -> HooksServer | None:
    """nginx's server for Evolution's webhooks; None from an edge file of the release before it."""
    port, source = settings.evolution_hooks_port, settings.evolution_hooks_source
    if port is None or source is None or settings.platform_upstream is None:
        return None
    return HooksServer(_listen(settings.listen_address, port), source)


def platform_vhost(settings: EdgeSettings, certificates: Collection[str]) -> PlatformVhost | None:
    if settings.platform_domain is None or settings.platform_upstream is None:
        return None
    name = settings.platform_domain
    cert = live_paths(settings, name) if name in certificates else None
    return PlatformVhost(name, cert)


def _listen(address: str, port: int) -> str:
    return f"{address}:{port}" if address else str(port)


def nginx_vhosts(settings: EdgeSettings, projects: Sequence[EdgeProject], certificates: Collection[str]) -> list[Vhost]:
    """certificates: cert names whose live files exist and cover the desired names."""
    check_edge_inputs(settings, projects)
    specs = desired_certificates(settings, projects)
    body = settings.client_max_body_size_mb

    def body_of(project: EdgeProject) -> int:
        """Uploads to a project's Storage may be larger than the default request limit."""
        storage = project.manifest.storage
        return max(body, storage.file_size_limit_mb + 1) if storage.enabled else body

    api_body = max([body, *(body_of(p) for p in served(projects))])

    def cert_of(name: str) -> tuple[str, str] | None:
        spec = cert_for_name(specs, name)
        if spec is None or spec.cert_name not in certificates:
            return None
        return live_paths(settings, spec.cert_name)

    vhosts: list[Vhost] = []
    # Studio for projects on the operator's Studio name replaces the basic-auth vhost there (its own server).
    if project_studio(settings, certificates) is None or settings.project_studio_domain != settings.studio_domain:
        vhosts.append(
            Vhost(
                comment=f"Studio (operator only): {settings.studio_domain}",
                server_names=(settings.studio_domain,),
                upstream="nm_studio",
                cert=cert_of(settings.studio_domain),
                body_mb=body,
                frame="SAMEORIGIN",
                basic_auth=(STUDIO_REALM, settings.studio_htpasswd),
                plain_ok=False,
            )
        )
    wildcard = f"*.{settings.api_domain}"
    if cert_of(wildcard) is not None:
        vhosts.append(Vhost(f"API, all projects: {wildcard}", (wildcard,), "nm_kong", cert_of(wildcard), api_body))
    else:
        vhosts.append(Vhost(f"API, projects without a certificate: {wildcard}", (wildcard,), "nm_kong", None, api_body))
        for project in served(projects):
            name = settings.project_host(project.ref)
            cert = cert_of(name)
            if cert is not None:
                vhosts.append(Vhost(f"API of {project.ref}", (name,), "nm_kong", cert, body_of(project)))
    for project in served(projects):
        for name in project_hostnames(settings, project)[1:]:
            vhosts.append(Vhost(f"custom domain of {project.ref}", (name,), "nm_kong", cert_of(name), body_of(project)))
    return vhosts


def metrics_project_map(settings: EdgeSettings, projects: Sequence[EdgeProject]) -> list[tuple[str, str]]:
    """(custom domain, ref) for the structured log's `$nm_project`: the API names carry their ref in the host."""
    return sorted(
        (name, project.ref) for project in served(projects) for name in project_hostnames(settings, project)[1:]
    )


def render_nginx(settings: EdgeSettings, projects: Sequence[EdgeProject], certificates: Collection[str] = ()) -> str:
    vhosts = nginx_vhosts(settings, projects, certificates)
    https_suffix = "" if settings.https_port == 443 else f":{settings.https_port}"
    return (
        environment(EDGE_TEMPLATES, trim_blocks=False)
        .get_template("nginx-edge.conf.j2")
        .render(
            vhosts=vhosts,
            any_tls=any(v.cert for v in vhosts),
            listen_http=_listen(settings.listen_address, settings.http_port),
            listen_https=_listen(settings.listen_address, settings.https_port),
            https_suffix=https_suffix,
            kong_proxy=settings.kong_proxy,
            studio_upstream=settings.studio_upstream,
            acme_webroot=settings.acme_webroot,
            default_server=settings.default_server,
            platform=platform_vhost(settings, certificates),
            platform_upstream=settings.platform_upstream,  # host:port of `nextmavens platform serve`
            hooks=hooks_server(settings),
            project_studio=project_studio(settings, certificates),
            meta_gate=meta_gate(settings),
            enter_path=STUDIO_ENTER_PATH,
            hooks_read_timeout_s=HOOKS_READ_TIMEOUT_S,
            platform_body_mb=PLATFORM_BODY_MB,
            platform_read_timeout_s=PLATFORM_READ_TIMEOUT_S,
            metrics_log=settings.metrics_log,
            metrics_log_format=METRICS_LOG_FORMAT,
            metrics_projects=metrics_project_map(settings, projects) if settings.metrics_log else [],
            deploy_body_mb=DEPLOY_BODY_MB,
            deploy_read_timeout_s=DEPLOY_READ_TIMEOUT_S,
        )
    )


# ---------------------------------------------------------------- applying


class NginxApplyError(RuntimeError):
    """The new config was refused; the previous one is back in place and still serving."""


@dataclass
class NginxApplier:
    """Writes one managed file, checks all of nginx's config, reloads; restores the last good on failure.

    conf_path: the file nginx includes (e.g. /etc/nginx/conf.d/nextmavens-edge.conf);
    state_dir: where the last good copy is kept (outside nginx's include globs).
    """

    conf_path: Path
    state_dir: Path
    test_cmd: Sequence[str] = ("nginx", "-t", "-q")
    reload_cmd: Sequence[str] = ("nginx", "-s", "reload")
    runner: Runner = run_command

    @property
    def last_good(self) -> Path:
        return self.state_dir / (self.conf_path.name + ".last-good")

    def apply(self, text: str) -> bool:
        """True when nginx now serves `text`, False when it already did; NginxApplyError when refused."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        previous = self.conf_path.read_text() if self.conf_path.exists() else None
        if previous == text and self.last_good.exists() and self.last_good.read_text() == text:
            return False
        self._write(self.conf_path, text)
        checked = self.runner(list(self.test_cmd))
        if checked.returncode != 0:
            self._restore(previous)
            raise NginxApplyError(f"nginx -t refused the new config; kept the previous one: {_tail(checked)}")
        reloaded = self.runner(list(self.reload_cmd))
        if reloaded.returncode != 0:
            self._restore(previous)
            self.runner(list(self.reload_cmd))
            raise NginxApplyError(f"nginx reload failed; restored the previous config: {_tail(reloaded)}")
        self._write(self.last_good, text)
        return True

    def remove(self) -> bool:
        """Take the managed file out (`nginx -t`, reload); True when there was one. Refused: the file is put back."""
        return bool(remove_managed([self]))

    def _restore(self, previous: str | None) -> None:
        if self.last_good.exists():
            self._write(self.conf_path, self.last_good.read_text())
        elif previous is not None:
            self._write(self.conf_path, previous)
        else:
            self.conf_path.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, text: str) -> None:
        write_atomic(path, text, 0o644)


def remove_managed(appliers: Sequence[NginxApplier]) -> list[Path]:
    """Take several managed files out with one `nginx -t` and one reload (the first applier's commands); the files
    that were there. Refused: every one is put back (NginxApplyError)."""
    for applier in appliers:
        if not applier.conf_path.exists():
            applier.last_good.unlink(missing_ok=True)
    present = [a for a in appliers if a.conf_path.exists()]
    if not present:
        return []
    previous = [(a.conf_path, a.conf_path.read_text()) for a in present]
    for path, _ in previous:
        path.unlink()
    names = ", ".join(path.name for path, _ in previous)
    first = present[0]

    def put_back() -> None:
        for path, text in previous:
            NginxApplier._write(path, text)

    checked = first.runner(list(first.test_cmd))
    if checked.returncode != 0:
        put_back()
        raise NginxApplyError(f"nginx -t refused the config without {names}: {_tail(checked)}")
    reloaded = first.runner(list(first.reload_cmd))
    if reloaded.returncode != 0:
        put_back()
        first.runner(list(first.reload_cmd))
        raise NginxApplyError(f"nginx reload failed; {names} put back: {_tail(reloaded)}")
    for applier in present:
        applier.last_good.unlink(missing_ok=True)
    return [path for path, _ in previous]


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr or result.stdout or "").strip()[-800:]
