"""The doctor's observations: read-only requests to the host's services, each turned into checks by `checks`.

Containers come from `docker inspect` through the edge's docker argv (so tests and the sandbox can put a
stand-in there); PostgREST's readiness and GoTrue's /health are asked inside their containers (neither publishes
a port); Kong, Supavisor and Realtime through the edge's own clients; nginx with a Host-header request to the
local nginx. Nothing here writes anything.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nextmavens.doctor import checks as c
from nextmavens.doctor.checks import Answer, Check, Container, Exec, Expected
from nextmavens.doctor.hostfile import DoctorHostConfig
from nextmavens.edge.apply import EdgeRuntime
from nextmavens.edge.certs import desired_certificates
from nextmavens.edge.clients.http import AdminApiError, request_json
from nextmavens.edge.clients.tenants import (
    desired_realtime_tenant,
    desired_supavisor_tenant,
    realtime_differences,
    supavisor_differences,
)
from nextmavens.edge.inputs import EdgeProject, project_hostnames, served
from nextmavens.edge.kong import AUTH_PORT, kong_json, render_kong
from nextmavens.naming import compose_project_name
from nextmavens.runner import run_command

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DoctorInputs:
    runtime: EdgeRuntime  # the edge's clients and docker runner, built from the edge settings file
    host: DoctorHostConfig
    projects: Sequence[EdgeProject]  # every manifest the engine holds secrets for
    certbot_config_dir: Path
    evolution_key: str | None
    now: datetime


def expected_containers(inputs: DoctorInputs) -> list[Expected]:
    settings = inputs.runtime.settings
    wanted = [
        Expected(target=name, image=image, name=name) for name, image in sorted(inputs.host.shared_containers.items())
    ]
    for project in sorted(inputs.projects, key=lambda p: p.ref):
        if project.state != "active":
            continue  # suspended projects are stopped on purpose
        services = {"rest": settings.postgrest_image, "auth": settings.gotrue_image}
        if project.manifest.storage.enabled:
            services["storage"] = settings.storage_image
        for service, image in services.items():
            wanted.append(
                Expected(f"{project.ref} {service}", image, project=compose_project_name(project.ref), service=service)
            )
    return wanted


def inspect_containers(inputs: DoctorInputs) -> list[Container]:
    run = inputs.runtime.run
    listed = run(["docker", "ps", "-aq", "--no-trunc"])
    if listed.returncode != 0:
        raise RuntimeError(f"docker ps failed: {(listed.stderr or listed.stdout).strip()[-300:]}")
    ids = listed.stdout.split()
    if not ids:
        return []
    inspected = run(["docker", "inspect", *ids])
    if inspected.returncode != 0:
        raise RuntimeError(f"docker inspect failed: {(inspected.stderr or inspected.stdout).strip()[-300:]}")
    return [Container.from_inspect(attrs) for attrs in json.loads(inspected.stdout or "[]")]


def in_container(inputs: DoctorInputs, container: Container | None, argv: list[str]) -> Exec | None:
    if container is None or container.status != "running":
        return None
    result = inputs.runtime.run(["docker", "exec", container.name, *argv])
    return Exec(result.returncode, (result.stdout or "") + (result.stderr or ""))


def get(url: str, headers: dict[str, str] | None = None) -> Answer:
    try:
        status, body = request_json("GET", url, headers=headers, timeout=TIMEOUT_S)
    except AdminApiError as exc:
        return Answer(None, error=str(exc))
    return Answer(status, body)


def nginx_get(address: str, port: int, host: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    conn = http.client.HTTPConnection(address, port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        response.read()
        return Answer(response.status)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, error=str(exc) or type(exc).__name__)
    finally:
        conn.close()


def certificate_expiry(config_dir: Path, cert_name: str) -> datetime | None:
    from cryptography import x509

    chain = config_dir / "live" / cert_name / "fullchain.pem"
    try:
        return x509.load_pem_x509_certificate(chain.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the run


def container_checks(inputs: DoctorInputs) -> tuple[list[Check], list[Container] | None]:
    try:
        containers = inspect_containers(inputs)
    except (RuntimeError, ValueError) as exc:
        return [c.failed("docker", "engine", str(exc), "is the docker engine running? systemctl status docker")], None
    found: list[Check] = []
    seen: set[str] = set()
    for expected in expected_containers(inputs):
        container = c.find(expected, containers)
        found.append(c.container_check(expected, container))
        if container is not None:
            seen.add(container.name)
            found.append(c.memory_check(expected, container))
            found.append(c.image_check(expected, container, inputs.host.images_are_substitutes))
    # Every other platform container running (a leftover service, a project's extra) needs its limit too.
    for other in containers:
        if other.name in seen or other.status != "running":
            continue
        if other.name.startswith("nextmavens-") or other.project.startswith(compose_project_name("")):
            found.append(c.memory_check(Expected(other.name, other.image, name=other.name), other))
    return found, containers


def kong_checks(inputs: DoctorInputs) -> list[Check]:
    runtime = inputs.runtime
    try:
        status = runtime.kong.status()
    except AdminApiError as exc:
        unknown = c.failed("kong config", "kong", "unknown: the admin API does not answer", "see the kong status check")
        return [c.kong_status_check(Answer(exc.status, error=str(exc))), unknown]
    rendered = kong_json(render_kong(runtime.settings, list(inputs.projects)))
    rendered_hash = hashlib.md5(rendered.encode()).hexdigest()  # noqa: S324 - Kong's configuration_hash is md5
    loaded = status.get("configuration_hash")
    return [
        c.kong_status_check(Answer(200, status)),
        c.kong_config_check(str(loaded) if loaded else None, rendered_hash),
    ]


def project_checks(inputs: DoctorInputs, containers: list[Container] | None) -> list[Check]:
    runtime, settings = inputs.runtime, inputs.runtime.settings
    found: list[Check] = []
    for project in sorted(inputs.projects, key=lambda p: p.ref):
        ref = project.ref
        if project.state == "active" and containers is not None:
            project_name = compose_project_name(ref)
            rest = c.find(Expected("", "", project=project_name, service="rest"), containers)
            auth = c.find(Expected("", "", project=project_name, service="auth"), containers)
            found.append(c.postgrest_ready_check(ref, in_container(inputs, rest, ["postgrest", "--ready"])))
            health = ["wget", "-q", "-O", "-", f"http://localhost:{AUTH_PORT}/health"]
            found.append(c.gotrue_health_check(ref, in_container(inputs, auth, health)))
        found += tenant_checks(inputs, project)
    for project in served(list(inputs.projects)):
        for name in project_hostnames(settings, project):
            answer = nginx_get(
                settings.listen_address or "127.0.0.1",
                settings.http_port,
                name,
                "/rest/v1/",
                {"apikey": project.secrets.keys.anon},
            )
            found.append(c.nginx_check(name, project.ref, project.state, answer))
    _ = runtime
    return found


def tenant_checks(inputs: DoctorInputs, project: EdgeProject) -> list[Check]:
    runtime, ref = inputs.runtime, project.ref
    found: list[Check] = []
    if runtime.supavisor is not None and project.state in ("active", "suspended"):
        try:
            observed = runtime.supavisor.get(ref)
            if project.state == "active":
                desired = desired_supavisor_tenant(runtime.settings, project.manifest)
                diffs = supavisor_differences(desired, observed) if observed is not None else []
                found.append(c.tenant_check("supavisor", ref, observed, diffs))
            else:
                found.append(c.tenant_absent_check("supavisor", ref, observed))
        except AdminApiError as exc:
            found.append(c.api_error_check("supavisor tenant", ref, str(exc), "docker logs nextmavens-supavisor"))
    if runtime.realtime is not None and project.state == "active":
        try:
            observed = runtime.realtime.get(ref)
            desired = desired_realtime_tenant(runtime.settings, project.manifest, project.secrets)
            diffs = realtime_differences(desired, observed) if observed is not None else []
            found.append(c.tenant_check("realtime", ref, observed, diffs))
        except AdminApiError as exc:
            found.append(c.api_error_check("realtime tenant", ref, str(exc), "docker logs nextmavens-realtime"))
    return found


def shared_http_checks(inputs: DoctorInputs) -> list[Check]:
    found: list[Check] = []
    if inputs.host.postgres_meta_url:
        found.append(c.postgres_meta_check(get(f"{inputs.host.postgres_meta_url}/health")))
    if inputs.host.evolution_url:
        key = inputs.evolution_key or ""
        answer = get(f"{inputs.host.evolution_url}/instance/fetchInstances", {"apikey": key}) if key else Answer(None)
        found.append(c.evolution_check(answer, bool(key)))
    return found


def unit_state(unit: str) -> str:
    """`systemctl is-active UNIT`: active, inactive, failed, activating, ... ("" when systemctl cannot say)."""
    try:
        return run_command(["systemctl", "is-active", unit], timeout=TIMEOUT_S).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def platform_checks(inputs: DoctorInputs) -> list[Check]:
    """The platform service: its unit and /healthz on loopback, then its name through the local nginx."""
    host, settings = inputs.host, inputs.runtime.settings
    if not host.platform_unit:
        return []
    found = [
        c.platform_service_check(
            host.platform_unit, unit_state(host.platform_unit), get(f"{host.platform_url}/healthz")
        )
    ]
    if settings.platform_domain:
        address = settings.listen_address or "127.0.0.1"
        answer = nginx_get(address, settings.http_port, settings.platform_domain, "/healthz")
        found.append(c.platform_vhost_check(settings.platform_domain, answer))
    return found


def certificate_checks(inputs: DoctorInputs) -> list[Check]:
    if not inputs.runtime.issue_certificates:
        return [c.certificates_off()]
    specs = desired_certificates(inputs.runtime.settings, list(inputs.projects))
    return [
        c.certificate_check(
            spec.cert_name,
            certificate_expiry(inputs.certbot_config_dir, spec.cert_name),
            inputs.now,
            c.CERTIFICATE_MIN_DAYS,
        )
        for spec in specs
    ]


def run_doctor(inputs: DoctorInputs) -> list[Check]:
    found, containers = container_checks(inputs)
    found += kong_checks(inputs)
    found += shared_http_checks(inputs)
    found += platform_checks(inputs)
    found += project_checks(inputs, containers)
    found += certificate_checks(inputs)
    return found
