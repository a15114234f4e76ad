"""The doctor's checks: observations (plain values) in, one `Check` each out, with a hint naming what to look at.

Pure: nothing here reads a file, a socket or the clock. `observe` gathers the values and calls these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from nextmavens.naming import service_container

Status = Literal["ok", "failed", "skipped"]
CERTIFICATE_MIN_DAYS = 14


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    status: Status
    detail: str
    hint: str = ""

    @property
    def ok(self) -> bool | None:
        """True, False, or None for a check that was skipped (never counted as passed)."""
        return None if self.status == "skipped" else self.status == "ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
        }


def passed(name: str, target: str, detail: str) -> Check:
    return Check(name, target, "ok", detail)


def failed(name: str, target: str, detail: str, hint: str) -> Check:
    return Check(name, target, "failed", detail, hint)


def skipped(name: str, target: str, reason: str) -> Check:
    return Check(name, target, "skipped", reason)


def healthy(checks: Sequence[Check]) -> bool:
    return not any(c.status == "failed" for c in checks)


# ---------------------------------------------------------------- observations


@dataclass(frozen=True)
class Container:
    """One container as `docker inspect` shows it."""

    name: str
    image: str  # Config.Image: the reference it was created from
    memory: int  # HostConfig.Memory in bytes; 0 is no limit
    status: str  # State.Status
    health: str | None  # State.Health.Status, None without a health check
    project: str = ""  # com.docker.compose.project
    service: str = ""  # com.docker.compose.service

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> Container:
        config = attrs.get("Config") or {}
        state = attrs.get("State") or {}
        labels = config.get("Labels") or {}
        health = (state.get("Health") or {}).get("Status")
        return cls(
            name=str(attrs.get("Name") or "?").lstrip("/"),
            image=str(config.get("Image") or ""),
            memory=int((attrs.get("HostConfig") or {}).get("Memory") or 0),
            status=str(state.get("Status") or "unknown"),
            health=str(health) if health else None,
            project=str(labels.get("com.docker.compose.project") or ""),
            service=str(labels.get("com.docker.compose.service") or ""),
        )


@dataclass(frozen=True)
class Expected:
    """A container the host must run: a shared service by container name, or a project's compose service."""

    target: str  # what the table names: the container name, or "<ref> <service>"
    image: str  # the pin
    name: str = ""  # container_name (shared stacks)
    project: str = ""  # compose project (per-project services)
    service: str = ""

    def matches(self, container: Container) -> bool:
        if self.name:
            return container.name == self.name
        return container.project == self.project and container.service == self.service


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, or why there was none."""

    status: int | None
    body: Any = None
    error: str | None = None

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error or 'closed'})"


@dataclass(frozen=True)
class Exec:
    """A command run inside a container: its exit code and the tail of its output."""

    returncode: int
    output: str = ""


# ---------------------------------------------------------------- containers


def find(expected: Expected, containers: Sequence[Container]) -> Container | None:
    return next((c for c in containers if expected.matches(c)), None)


def container_check(expected: Expected, container: Container | None) -> Check:
    logs = f"docker logs {container.name}" if container else ""
    if container is None:
        where = f"docker ps -a --filter name={expected.name}" if expected.name else "nextmavens apply"
        return failed("container", expected.target, "not found", f"the container does not exist: run {where}")
    if container.status != "running":
        return failed("container", expected.target, container.status, f"it is not running: {logs}")
    if container.health == "unhealthy":
        return failed(
            "container",
            expected.target,
            "running (unhealthy)",
            f"its health check fails: docker inspect {container.name}",
        )
    return passed("container", expected.target, "running" + (f" ({container.health})" if container.health else ""))


def memory_check(expected: Expected, container: Container) -> Check:
    if container.memory <= 0:
        return failed(
            "memory limit",
            expected.target,
            "no memory limit",
            "every container needs mem_limit (memory admission counts on it): check its compose file and recreate it",
        )
    return passed("memory limit", expected.target, f"{container.memory // (1024 * 1024)} MiB")


def image_check(expected: Expected, container: Container, substitutes: bool) -> Check:
    if substitutes:
        return skipped("image pin", expected.target, "images are substitutes on this host (images_are_substitutes)")
    if container.image != expected.image:
        return failed(
            "image pin",
            expected.target,
            f"runs {container.image}, pinned {expected.image}",
            "the running image is not the pin: re-run the deploy (or nextmavens apply for a project's services)",
        )
    return passed("image pin", expected.target, container.image)


# ---------------------------------------------------------------- Kong


def kong_status_check(answer: Answer) -> Check:
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status != 200:
        return failed(
            "kong status", "kong", answer.describe(), "Kong's admin API does not answer: docker logs nextmavens-kong"
        )
    if (body.get("database") or {}).get("reachable") is False:
        return failed("kong status", "kong", "database not reachable", "docker logs nextmavens-kong")
    return passed("kong status", "kong", "healthy")


def kong_config_check(loaded_hash: str | None, rendered_hash: str) -> Check:
    """Kong 2.8.1 DB-less reports the md5 of the declarative config it runs as /status configuration_hash: POST
    /config hands the posted `config` string to parse_string, which hashes it with ngx.md5 (kong@2.8.1:
    kong/api/routes/config.lua, kong/db/declarative/init.lua; /status in kong/api/routes/health.lua)."""
    if not loaded_hash or set(loaded_hash) == {"0"}:
        return failed(
            "kong config",
            "kong",
            "no declarative config loaded",
            "Kong runs without the platform's routes (restarted?): run nextmavens apply",
        )
    if loaded_hash != rendered_hash:
        return failed(
            "kong config",
            "kong",
            f"loaded {loaded_hash[:12]}, rendered {rendered_hash[:12]}",
            "Kong runs another config than the edge renders: run nextmavens apply; if it fails, Kong refuses "
            "the config (its message is in the apply output, docker logs nextmavens-kong)",
        )
    return passed("kong config", "kong", f"loaded the rendered config ({rendered_hash[:12]})")


# ---------------------------------------------------------------- per-project services


def _container_probe(
    name: str, ref: str, result: Exec | None, container: str, failure: str, hint: str, ok: str
) -> Check:
    """A probe run inside one project container: missing container, non-zero exit (output tail kept), or ok."""
    if result is None:
        return failed(name, ref, f"no {container} container", "run nextmavens apply")
    if result.returncode != 0:
        return failed(name, ref, f"{failure}: {result.output.strip()[-200:]}", hint)
    return passed(name, ref, ok)


def postgrest_ready_check(ref: str, result: Exec | None) -> Check:
    code = result.returncode if result else 0
    return _container_probe(
        "postgrest ready",
        ref,
        result,
        "rest",
        f"postgrest --ready exited {code}",
        f"PostgREST is not ready (database login, schema cache): docker logs {service_container(ref, 'rest')}",
        "postgrest --ready: ok",
    )


def gotrue_health_check(ref: str, result: Exec | None) -> Check:
    code = result.returncode if result else 0
    return _container_probe(
        "gotrue health",
        ref,
        result,
        "auth",
        f"GET /health failed ({code})",
        f"GoTrue does not answer /health (database login, migrations): docker logs {service_container(ref, 'auth')}",
        "GET /health: ok",
    )


def tenant_check(service: str, ref: str, observed: dict[str, Any] | None, differences: Sequence[str]) -> Check:
    name = f"{service} tenant"
    if observed is None:
        return failed(name, ref, "tenant missing", f"{service} does not list the project: run nextmavens apply")
    if differences:
        return failed(name, ref, "; ".join(differences), "the tenant differs from the manifest: run nextmavens apply")
    return passed(name, ref, "listed, as rendered")


def tenant_absent_check(service: str, ref: str, observed: dict[str, Any] | None) -> Check:
    """A suspended project has no pooler tenant (its pooled logins stop)."""
    if observed is not None:
        return failed(f"{service} tenant", ref, "suspended, but still listed", "run nextmavens apply")
    return passed(f"{service} tenant", ref, "suspended: not listed")


def api_error_check(name: str, target: str, error: str, hint: str) -> Check:
    return failed(name, target, error[:300], hint)


# ---------------------------------------------------------------- shared HTTP services


def postgres_meta_check(answer: Answer) -> Check:
    if answer.status != 200:
        return failed(
            "postgres-meta", "nextmavens-meta", answer.describe(), "docker logs nextmavens-meta (Studio needs it)"
        )
    return passed("postgres-meta", "nextmavens-meta", "GET /health: 200")


def evolution_check(answer: Answer, key_known: bool) -> Check:
    if not key_known:
        return failed(
            "evolution api",
            "nextmavens-evolution",
            "EVOLUTION_API_KEY is not set",
            "run the doctor through /opt/nextmavens/bin/nextmavens-env (it loads the host's secrets file)",
        )
    if answer.status in (401, 403):
        return failed(
            "evolution api",
            "nextmavens-evolution",
            f"the platform key is refused ({answer.describe()})",
            "Evolution runs with another AUTHENTICATION_API_KEY than the secrets file: re-run the deploy",
        )
    if answer.status != 200:
        return failed("evolution api", "nextmavens-evolution", answer.describe(), "docker logs nextmavens-evolution")
    return passed("evolution api", "nextmavens-evolution", "answers with the platform key")


# ---------------------------------------------------------------- nginx


def nginx_check(name: str, ref: str, state: str, answer: Answer) -> Check:
    """GET /rest/v1/ with the project's anon key, Host: name, at the local nginx. An active project answers
    200 through Kong (or redirects to HTTPS); a suspended one 503 (Kong's request-termination)."""
    target = name
    if answer.status is None:
        return failed(
            "nginx", target, answer.describe(), f"nginx has no vhost for {name}: nginx -T, then nextmavens apply"
        )
    status = answer.status
    if state == "suspended":
        if status == 503:
            return passed("nginx", target, "suspended: 503")
        return failed(
            "nginx", target, f"suspended, but {answer.describe()}", "Kong should answer 503: nextmavens apply"
        )
    if status == 200 or status in (301, 302, 307, 308):
        return passed("nginx", target, answer.describe() + (" (to HTTPS)" if status != 200 else ""))
    hints = {
        401: "Kong does not know the project's anon key: its config is stale (see the kong config check)",
        404: "Kong has no route for this name: nextmavens apply",
        502: f"nothing answers behind nginx: Kong (docker logs nextmavens-kong) or rest-{ref}",
        503: f"the service behind Kong is down: docker logs {service_container(ref, 'rest')}",
        504: f"the service behind Kong times out: docker logs {service_container(ref, 'rest')}",
    }
    fallback = f"see nginx's error log and {service_container(ref, 'rest')}"
    return failed("nginx", target, answer.describe(), hints.get(status, fallback))


# ---------------------------------------------------------------- the platform service


def platform_service_check(unit: str, state: str, answer: Answer) -> Check:
    """The unit is active (systemd) and the service's /healthz answers 200 on its loopback port."""
    if state != "active":
        return failed(
            "platform service", unit, f"systemd: {state or 'unknown'}", f"systemctl status {unit}; journalctl -u {unit}"
        )
    if answer.status != 200:
        hint = (
            "the service cannot reach the control database: journalctl -u " + unit
            if answer.status == 503
            else f"journalctl -u {unit}"
        )
        return failed("platform service", unit, f"active, but GET /healthz: {answer.describe()}", hint)
    return passed("platform service", unit, "active; GET /healthz: 200")


def platform_vhost_check(name: str, answer: Answer) -> Check:
    """GET /healthz with Host: name at the local nginx: 200 (plain HTTP before its certificate) or a redirect."""
    if answer.status == 200 or answer.status in (301, 302, 307, 308):
        return passed("nginx", name, answer.describe() + (" (to HTTPS)" if answer.status != 200 else ""))
    if answer.status is None:
        return failed(
            "nginx", name, answer.describe(), f"nginx has no vhost for {name}: nginx -T, then nextmavens apply"
        )
    hints = {502: "nothing answers behind nginx: the platform service (see the platform service check)"}
    return failed("nginx", name, answer.describe(), hints.get(answer.status, "see nginx's error log"))


# ---------------------------------------------------------------- certificates


def certificate_check(cert_name: str, not_after: datetime | None, now: datetime, min_days: int) -> Check:
    if not_after is None:
        return failed(
            "certificate",
            cert_name,
            "no certificate",
            "not issued yet: does the name resolve to edge_host_ipv4? See nextmavens apply's warnings and "
            "/var/log/letsencrypt",
        )
    days = (not_after - now).total_seconds() / 86400
    if days <= min_days:
        return failed(
            "certificate",
            cert_name,
            f"expires in {days:.1f} days ({not_after:%Y-%m-%d})",
            "renewal is not happening: run nextmavens apply and read /var/log/letsencrypt",
        )
    return passed("certificate", cert_name, f"valid {days:.0f} more days")


def certificates_off() -> Check:
    return skipped("certificate", "all names", "certificates are off on this host (edge_issue_certificates = False)")
